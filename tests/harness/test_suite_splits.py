"""Suites with 'splits': every run once per split seed (the data card's, or a list)."""

from __future__ import annotations

import pytest

from mv2d_bench.cli import main
from mv2d_bench.config import ConfigError
from mv2d_bench.harness.suite import load_suite, plan_config


def suite_file(tmp_path, splits, bench_set=""):
    path = tmp_path / "s.toml"
    path.write_text(
        '[suite]\nbenchmarks = [{name = "hand"' + bench_set + '}, "synthetic-mv"]\n'
        f"seeds = [0, 1]\nsplits = {splits}\n"
        'set = { "data.split" = "mvnncor" }\n'
        '[[setting]]\nname = "b"\nobjective = "baseline"\n'
    )
    return path


def test_card_splits_expand_every_benchmark_by_its_data_card(tmp_path):
    suite = load_suite(suite_file(tmp_path, '"card"'))
    got = [(b.name, b.split_seed) for b in suite.benchmarks]
    assert got == [("hand", s) for s in (300, 301, 302, 303, 304)] + [
        ("synthetic-mv", s) for s in (0, 1, 2, 3, 4)
    ]
    cfg = plan_config(suite, suite.benchmarks[2], suite.settings[0], 1)
    assert cfg.data.split_seed == 302 and cfg.data.split == "mvnncor" and cfg.run.seed == 1


def test_listed_splits_and_the_dry_run(tmp_path, capsys):
    path = suite_file(tmp_path, "[7, 9]")
    suite = load_suite(path)
    assert [b.split_seed for b in suite.benchmarks] == [7, 9, 7, 9]
    assert main(["suite", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "8 runs planned" in out and "seed 1  split 9" in out


@pytest.mark.parametrize("splits", ['"all"', "[]", "[1, 1]", "[-1]"])
def test_bad_splits_are_refused_naming_the_file(tmp_path, splits):
    with pytest.raises(ConfigError, match="'suite.splits' must be"):
        load_suite(suite_file(tmp_path, splits))


def test_a_benchmark_may_not_also_set_the_split_seed(tmp_path):
    path = suite_file(tmp_path, '"card"', ', set = { "data.split_seed" = 3 }')
    with pytest.raises(ConfigError, match="sets data.split_seed"):
        load_suite(path)
