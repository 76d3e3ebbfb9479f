"""``mv2d-bench suite``: settings pair objectives with model switches; absent data and recorded
runs are skipped; a summary table ends the output."""

from __future__ import annotations

import json
import statistics

import pytest

from mv2d_bench.cli import main
from mv2d_bench.config import ConfigError
from mv2d_bench.harness.suite import load_suite

SUITE = """
[suite]
name = "t"
benchmarks = [
  {{ name = "synthetic-mv", set = {{ "benchmark.samples" = 200, "benchmark.n_views" = 2 }} }},
  "caltech20",
]
seeds = [0, 1]

[suite.set]
"train.epochs" = {epochs}
"train.progress" = false
"run.threads" = 1
"model.hidden" = [16, 8]
"model.z_dim" = 4
"model.bottleneck_hidden" = 4
"model.relation_rank" = 4
"model.classifier_hidden" = 8

[[setting]]
name = "no-bottleneck"
objective = "baseline"
set = {{ "model.bottleneck" = false }}

[[setting]]
name = "mv2d"
objective = "mv2d"
"""


@pytest.fixture
def suite_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MV2D_DATA", str(tmp_path / "empty-data-root"))
    (tmp_path / "empty-data-root").mkdir()
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(epochs=1).replace("{{", "{").replace("}}", "}"))
    return path


def records(folder):
    return sorted(folder.glob("*.json"))


def test_runs_skips_absent_data_and_summarises(suite_file, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["suite", str(suite_file), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    skips = [line for line in text.splitlines() if line.startswith("skip")]
    assert len(skips) == 1 and skips[0].startswith("skip caltech20: data not found")
    assert "4 runs planned, 0 already recorded" in text
    recs = [json.loads(p.read_text()) for p in records(out)]
    assert len(recs) == 4
    assert sorted((r["objective"]["name"], r["seed"]) for r in recs) == [
        ("baseline", 0), ("baseline", 1), ("mv2d", 0), ("mv2d", 1)
    ]  # fmt: skip
    no_bn = [r for r in recs if r["objective"]["name"] == "baseline"]
    assert all(r["config"]["model"]["bottleneck"] is False for r in no_bn)
    mv2d = [r["metrics"]["accuracy"] for r in recs if r["objective"]["name"] == "mv2d"]
    table = text.splitlines()[-3:]
    assert table[0].split()[-2:] == ["no-bottleneck", "mv2d"]
    row = table[-1]
    assert row.startswith("synthetic-mv")
    assert f"{statistics.fmean(mv2d):.2f} ± {statistics.stdev(mv2d):.2f} (2)" in row


def test_second_invocation_skips_recorded_runs(suite_file, tmp_path, capsys):
    out = tmp_path / "runs"
    main(["suite", str(suite_file), "--out", str(out), "--setting", "mv2d", "--seeds", "0"])
    first = records(out)
    capsys.readouterr()
    assert main(["suite", str(suite_file), "--out", str(out), "--setting", "mv2d"]) == 0
    text = capsys.readouterr().out
    assert "2 runs planned, 1 already recorded" in text
    assert len(records(out)) == 2 and set(first) <= set(records(out))
    # a renamed record is still recognised (matched on its fields, not its file name)
    first[0].rename(out / "renamed.json")
    main(["suite", str(suite_file), "--out", str(out), "--setting", "mv2d"])
    assert "2 runs planned, 2 already recorded" in capsys.readouterr().out
    # a different configuration is a different run
    main(["suite", str(suite_file), "--out", str(out), "--setting", "mv2d", "--seeds", "0",
          "--set", "train.lr=0.01"])  # fmt: skip
    assert "1 runs planned, 0 already recorded" in capsys.readouterr().out
    assert len(records(out)) == 3


def test_dry_run_lists_and_trains_nothing(suite_file, tmp_path, capsys):
    assert main(["suite", str(suite_file), "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.count("pending") == 4 and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ('[suite]\nbenchmarks = ["hand"]\n', "no settings"),
        ('[suite]\nbenchmarks = []\nobjectives = ["vib"]\n', "at least one benchmark"),
        ('[suite]\nbenchmarks = ["hand"]\nobjectives = ["vib"]\nseed = [1]\n', "unknown key"),
        ('[suite]\nbenchmarks = ["hand"]\nobjectives = ["vib", "vib"]\n', "unique"),
        ('[suite]\nbenchmarks = ["hand"]\nseeds = [-1]\nobjectives = ["vib"]\n', "seeds"),
        ('[suite]\nbenchmarks = ["hand"]\n[[setting]]\nname = "x"\n', "'objective'"),
    ],
)
def test_bad_suite_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unknown_names_fail_before_anything_runs(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('[suite]\nbenchmarks = ["synthetic-mv"]\nobjectives = ["mv2dd"]\n')
    assert main(["suite", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "did you mean 'mv2d'" in capsys.readouterr().err


def test_paper_suite_has_the_six_settings_on_six_datasets():
    suite = load_suite("configs/suites/paper-mvc.toml")
    assert [b.name for b in suite.benchmarks] == [
        "hand", "caltech101", "caltech20", "awa", "nuswideobj", "reuters"
    ]  # fmt: skip
    assert suite.seeds == [0, 1, 2, 3, 4]
    assert [(s.name, s.objective, s.overrides) for s in suite.settings] == [
        ("no-bottleneck", "baseline", {"model.bottleneck": False}),
        ("cib", "cib", {}),
        ("bottleneck", "baseline", {}),
        ("vib", "vib", {}),
        ("vsd", "vsd", {}),
        ("mv2d", "mv2d", {}),
    ]
