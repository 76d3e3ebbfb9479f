"""leaderboard compare: per entry the change of each mean (against the records), whether it
exceeds the seeds' spread, entries only on one side, and re-configured entries."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from mv2d_bench.cli import main
from mv2d_bench.leaderboards import board as B
from mv2d_bench.leaderboards.compare import compare, exceeds_spread
from mv2d_bench.leaderboards.records import write_record
from mv2d_bench.leaderboards.testing import accuracy_of, mvc_record


def build(folder: Path, suite: dict, epochs: int = 160) -> dict:
    for obj, errs in suite.items():
        for s, e in enumerate(errs):
            write_record(folder, mvc_record("hand", obj, seed=s, errors=e, epochs=epochs))
    return B.build(B.load_records([folder]))


A_SUITE = {"mv2d": [1, 1, 0, 2, 1], "vib": [2, 3, 2, 1, 2], "vsd": [2, 2, 2, 2, 3]}
B_SUITE = {"mv2d": [1, 2, 0, 2, 1], "vib": [8, 9, 7, 8, 9], "cib": [20, 25, 22, 21, 24]}


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    return build(root / "a", A_SUITE), build(root / "b", B_SUITE)


def by_label(result):
    return {r["label"]: r for r in result["entries"]}


def test_deltas_equal_the_difference_of_the_records_means(boards):
    result = by_label(compare(*boards))
    for label in ("mv2d", "vib"):
        acc_a = [accuracy_of("hand", k) for k in A_SUITE[label]]
        acc_b = [accuracy_of("hand", k) for k in B_SUITE[label]]
        m = result[label]["metrics"]["accuracy"]
        assert m["delta"] == pytest.approx(statistics.fmean(acc_b) - statistics.fmean(acc_a))
        assert m["std_a"] == pytest.approx(statistics.stdev(acc_a))
        assert m["std_b"] == pytest.approx(statistics.stdev(acc_b))
        assert result[label]["status"] == "changed"
    # identical records keep their content-derived ids: only seed 1 of mv2d was re-run
    assert "runs: 1 added, 1 removed" in result["mv2d"]["changes"]
    assert "runs: 5 added, 5 removed" in result["vib"]["changes"]


def test_spread_decides_what_is_a_real_change(boards):
    result = by_label(compare(*boards))
    mv2d, vib = result["mv2d"]["metrics"]["accuracy"], result["vib"]["metrics"]["accuracy"]
    assert mv2d["delta"] == pytest.approx(-0.1)  # one more error in 1000 items
    assert mv2d["exceeds_spread"] is False and mv2d["direction"] == "worse"
    assert vib["delta"] == pytest.approx(-3.1) and vib["exceeds_spread"] is True
    assert vib["welch_p"] < 0.001 < mv2d["welch_p"]
    assert exceeds_spread(0.5, None, None) is None
    assert exceeds_spread(0.5, 0.4, None) is True and exceeds_spread(-0.5, 0.2, 0.6) is False


def test_entries_on_one_side_only(boards):
    result = by_label(compare(*boards))
    assert result["vsd"]["status"] == "only-a" and result["cib"]["status"] == "only-b"
    assert result["cib"]["metrics"]["accuracy"]["b"] == pytest.approx(
        statistics.fmean(accuracy_of("hand", k) for k in B_SUITE["cib"])
    )


def test_same_board_compares_as_same(boards):
    a, _ = boards
    assert {r["status"] for r in compare(a, a)["entries"]} == {"same"}


def test_a_reconfigured_entry_is_matched_by_label_and_its_config_change_listed(tmp_path, boards):
    a, _ = boards
    b = build(tmp_path, {"mv2d": [1, 1, 0, 2, 1]}, epochs=100)
    (row,) = [r for r in compare(a, b)["entries"] if r["label"] == "mv2d"]
    assert row["status"] == "changed"
    assert row["metrics"]["accuracy"]["delta"] == 0.0
    assert "config.train.epochs: 160 -> 100" in row["changes"]


def test_cli_text_and_json(boards, tmp_path, capsys):
    paths = []
    for name, lb in zip("ab", boards, strict=True):
        paths.append(tmp_path / f"{name}.json")
        B.write_leaderboard(lb, paths[-1])
    assert main(["leaderboard", "compare", *map(str, paths)]) == 0
    text = capsys.readouterr().out
    assert "hand / mvc/accuracy@1" in text
    assert "vib: changed" in text and "(-3.10, worse; EXCEEDS the seeds' spread" in text
    assert "(-0.10, worse; within the seeds' spread" in text
    assert "- vsd: only in A" in text and "+ cib: only in B" in text
    assert main(["leaderboard", "compare", *map(str, paths), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(compare(*boards)))
