"""leaderboard build: grouping, mean/std against an independent computation, completeness,
ranking, splits and protocol versions never averaged, reference rows, split-trial protocols."""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import ClassVar

import pytest

from mv2d_bench.cli import main
from mv2d_bench.leaderboards import board as B
from mv2d_bench.leaderboards.protocols.base import Metric, Protocol
from mv2d_bench.leaderboards.protocols.mvc_accuracy import MvcAccuracy
from mv2d_bench.leaderboards.records import read_record, write_record
from mv2d_bench.leaderboards.testing import (
    accuracy_of,
    installed_protocol,
    mvc_record,
    record_with,
)
from mv2d_bench.leaderboards.validate import leaderboard_violations

ERRORS = {"mv2d": [1, 1, 0, 2, 1], "vib": [2, 3, 2, 1, 2], "cib": [6, 9, 5]}
PAPER = {
    "schema_version": 1,
    "kind": "mv2d-bench/reference-rows",
    "source": {"title": "Variational Distillation for Multi-View Learning", "citation": "T24"},
    "rows": [
        {
            "benchmark": "hand",
            "protocol": "mvc/accuracy@1",
            "table": "Table 7",
            "label": "MV2D (paper)",
            "objective": {"name": "mv2d"},
            "metrics": {"accuracy": 99.40},
        }
    ],
}


def write_suite(folder: Path, errors=ERRORS, bench: str = "hand", **kw) -> list[Path]:
    return [
        write_record(folder, mvc_record(bench, obj, seed=s, errors=e, **kw))
        for obj, errs in errors.items()
        for s, e in enumerate(errs)
    ]


def entry(lb, label, bench="hand"):
    (board,) = [b for b in lb["boards"] if b["benchmark"] == bench]
    (e,) = [x for x in board["entries"] if x["label"] == label]
    return e


def test_mean_and_std_equal_an_independent_computation_from_the_records(tmp_path):
    write_suite(tmp_path / "runs")
    out = tmp_path / "lb.json"
    lb = B.build(B.load_records([tmp_path / "runs"]), out_path=out)
    for obj, errs in ERRORS.items():
        e = entry(lb, obj)
        accs = [read_record(out.parent / r["record"])["metrics"]["accuracy"] for r in e["runs"]]
        assert accs == [accuracy_of("hand", k) for k in errs]  # the records hold what was scored
        stat = e["metrics"]["accuracy"]
        assert stat["mean"] == pytest.approx(statistics.fmean(accs), abs=1e-12)
        assert stat["std"] == pytest.approx(statistics.stdev(accs), abs=1e-12)
        assert stat["n"] == e["n"] == len(errs)
        assert e["seeds"] == list(range(len(errs)))
    assert entry(lb, "mv2d")["metrics"]["accuracy"]["mean"] == pytest.approx(99.5)  # 5 errors/1000
    assert leaderboard_violations(lb) == []


def test_incomplete_entries_are_marked_and_not_ranked(tmp_path):
    write_suite(tmp_path)
    lb = B.build(B.load_records([tmp_path]))
    cib = entry(lb, "cib")
    assert cib["complete"] is False and cib["rank"] is None
    assert cib["incomplete_reason"] == "3 of 5 required seeds"
    assert [(e["label"], e["rank"]) for e in lb["boards"][0]["entries"]] == [
        ("mv2d", 1),
        ("vib", 2),
        ("cib", None),
    ]


def test_equal_means_share_a_rank_and_min_metrics_rank_ascending():
    assert B.competition_ranks([99.0, 99.5, 99.0, 98.0], "max") == [2, 1, 2, 4]
    assert B.competition_ranks([0.3, 0.1, 0.1], "min") == [3, 1, 1]


def test_runs_on_different_splits_are_never_averaged(tmp_path):
    write_suite(tmp_path, {"mv2d": [1, 1, 0, 2, 1]})
    write_suite(tmp_path, {"mv2d": [3, 4, 3, 3, 3]}, split_seed=1)
    lb = B.build(B.load_records([tmp_path]))
    entries = lb["boards"][0]["entries"]
    assert len(entries) == 2
    for e in entries:
        assert len(e["splits"]) == 1 and e["n"] == 5
        assert len({r["split_id"] for r in e["runs"]}) == 1
    means = sorted(e["metrics"]["accuracy"]["mean"] for e in entries)
    assert means == pytest.approx([statistics.fmean([98.5, 98.0, 98.5, 98.5, 98.5]), 99.5])


def test_same_config_on_another_split_is_kept_apart_with_a_note(tmp_path):
    write_suite(tmp_path, {"mv2d": [1, 1, 0, 2, 1]})
    for s in range(2):  # same config, but the split's index lists differ
        rec = mvc_record("hand", "mv2d", seed=s, errors=3)
        write_record(
            tmp_path,
            record_with(rec, benchmark__split_id="mvc-other", benchmark__split_sha256="f" * 64),
        )
    lb = B.build(B.load_records([tmp_path]))
    entries = sorted(lb["boards"][0]["entries"], key=lambda e: e["n"])
    assert [(e["n"], e["splits"][0]["id"]) for e in entries] == [
        (2, "mvc-other"),
        (5, "mvc-70/20/10-seed0"),
    ]
    assert entries[1]["metrics"]["accuracy"]["mean"] == pytest.approx(99.5)
    assert entries[0]["label"] != entries[1]["label"]
    assert any("2 different splits" in n for n in lb["boards"][0]["notes"])


class MvcAccuracyV9(MvcAccuracy):
    id: ClassVar[str] = "mvc/accuracy@9"


def test_protocol_versions_are_never_averaged(tmp_path):
    write_suite(tmp_path, {"mv2d": [1, 1, 0, 2, 1]})
    write_suite(tmp_path, {"mv2d": [9, 9, 9, 9, 9]}, protocol="mvc/accuracy@9")
    with installed_protocol(MvcAccuracyV9):
        lb = B.build(B.load_records([tmp_path]))
    by_protocol = {b["protocol"]: b for b in lb["boards"]}
    assert set(by_protocol) == {"mvc/accuracy@1", "mvc/accuracy@9"}
    v1 = by_protocol["mvc/accuracy@1"]["entries"][0]["metrics"]["accuracy"]
    v2 = by_protocol["mvc/accuracy@9"]["entries"][0]["metrics"]["accuracy"]
    assert v1["mean"] == pytest.approx(99.5) and v2["mean"] == pytest.approx(95.5)


def test_a_record_under_an_uninstalled_protocol_version_stops_the_build(tmp_path):
    write_suite(tmp_path, {"mv2d": [1]}, protocol="mvc/accuracy@9")
    with pytest.raises(B.BuildError, match="protocol version mismatch: mvc/accuracy@9"):
        B.build(B.load_records([tmp_path]))


def test_a_seed_recorded_twice_stops_the_build_naming_both_files(tmp_path):
    a = write_record(tmp_path, mvc_record("hand", "mv2d", seed=0, errors=1))
    b = write_record(tmp_path, mvc_record("hand", "mv2d", seed=0, errors=2))
    with pytest.raises(B.BuildError) as err:
        B.build(B.load_records([tmp_path]))
    assert "seed 0 of this entry is also recorded in" in str(err.value)
    assert a.name in str(err.value) and b.name in str(err.value)


def test_every_invalid_record_is_listed(tmp_path):
    good = mvc_record("hand", "mv2d")
    bad1 = record_with(good, metrics__accuracy=101.0, per_trial=[])
    bad2 = record_with(good, seed=2, benchmark__split_sha256="xyz")
    for i, rec in enumerate([bad1, bad2]):
        (tmp_path / f"hand-mv2d-s{i}-{rec['run_id']}.json").write_text(json.dumps(rec))
    with pytest.raises(B.BuildError) as err:
        B.build(B.load_records([tmp_path]))
    paths = {(Path(v.file).name[:11], v.path) for v in err.value.violations}
    assert ("hand-mv2d-s", "$.metrics.accuracy") in paths
    assert ("hand-mv2d-s", "$.per_trial") in paths
    assert ("hand-mv2d-s", "$.benchmark.split_sha256") in paths


def test_reference_rows_are_added_unranked_with_their_table(tmp_path):
    write_suite(tmp_path / "runs")
    ref = tmp_path / "paper.json"
    ref.write_text(json.dumps(PAPER))
    lb = B.build(B.load_records([tmp_path / "runs"]), B.load_references([ref]))
    paper = entry(lb, "MV2D (paper)")
    assert paper["measured"] is False and paper["rank"] is None
    assert paper["metrics"]["accuracy"]["mean"] == 99.40
    assert paper["source"] == "Table 7 of T24"
    assert leaderboard_violations(lb) == []


def test_benchmark_filter_and_relative_record_paths(tmp_path):
    write_suite(tmp_path / "runs", {"mv2d": [1, 2]})
    write_suite(tmp_path / "runs", {"mv2d": [4, 5]}, bench="scene15")
    out = tmp_path / "pub" / "lb.json"
    out.parent.mkdir()
    lb = B.build(B.load_records([tmp_path / "runs"]), out_path=out, benchmarks=["scene15"])
    assert [b["benchmark"] for b in lb["boards"]] == ["scene15"]
    for r in lb["boards"][0]["entries"][0]["runs"]:
        assert r["record"].startswith("../runs/")
        assert (out.parent / r["record"]).is_file()


def test_labels_tell_same_objective_entries_apart(tmp_path):
    write_suite(tmp_path, {"mv2d": [1, 1]}, model_params={"z_dim": 16})
    write_suite(tmp_path, {"mv2d": [0, 1]}, model_params={"z_dim": 128})
    lb = B.build(B.load_records([tmp_path]))
    assert sorted(e["label"] for e in lb["boards"][0]["entries"]) == [
        "mv2d (z_dim=128)",
        "mv2d (z_dim=16)",
    ]


def test_labels_name_the_model_first_when_entries_of_one_objective_use_different_models(tmp_path):
    # Two fusions of one model and a second model with many other parameters: each label names
    # its model, then only what varies among that model's entries (not the first 4 keys of all).
    for fusion in ("concat", "relation-full"):
        write_suite(tmp_path, {"baseline": [1, 1]}, model_params={"fusion": fusion})
    for s, e in enumerate([0, 2]):
        rec = mvc_record(
            "hand",
            "baseline",
            seed=s,
            errors=e,
            model_params={"hidden": [400, 200], "gamma": 6.0, "init_std": 0.02},
        )
        rec = record_with(rec, model__name="released", config__model__name="released")
        write_record(tmp_path, rec)
    lb = B.build(B.load_records([tmp_path]))
    assert sorted(e["label"] for e in lb["boards"][0]["entries"]) == [
        "baseline (model=mvnncor, fusion=concat)",
        "baseline (model=mvnncor, fusion=relation-full)",
        "baseline (model=released)",
    ]


class ToySplitTrials(Protocol):
    """A protocol whose trials are separate runs (as RegDB's ten splits)."""

    id: ClassVar[str] = "toy/split-trials@1"
    benchmark: ClassVar[str] = "toy"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("accuracy"),)
    primary: ClassVar[str] = "accuracy"
    required_seeds: ClassVar[int] = 3
    trials: ClassVar[int] = 1
    required_trials: ClassVar[tuple[int, ...]] = (1, 2, 3)


def split_trial_record(trial: int, seed: int, value: float) -> dict:
    base = mvc_record("hand", "mv2d", seed=seed)
    return record_with(
        base,
        protocol=ToySplitTrials.id,
        benchmark__name="toy-bench",
        benchmark__trial=trial,
        benchmark__split_id=f"toy-trial{trial}",
        benchmark__split_sha256=hashlib.sha256(f"trial{trial}".encode()).hexdigest(),
        metrics={"accuracy": value},
        per_trial=[{"trial": trial, "metrics": {"accuracy": value}}],
    )


def test_split_trial_protocols_average_each_trial_first(tmp_path):
    runs = [(1, 0, 80.0), (1, 1, 90.0), (2, 0, 70.0), (3, 0, 60.0)]
    with installed_protocol(ToySplitTrials):
        for t, s, v in runs:
            write_record(tmp_path, split_trial_record(t, s, v))
        lb = B.build(B.load_records([tmp_path]))
        (e,) = lb["boards"][0]["entries"]
        trial_means = [statistics.fmean([80.0, 90.0]), 70.0, 60.0]
        assert e["metrics"]["accuracy"]["values"] == trial_means
        assert e["metrics"]["accuracy"]["mean"] == pytest.approx(statistics.fmean(trial_means))
        assert e["metrics"]["accuracy"]["std"] == pytest.approx(statistics.stdev(trial_means))
        assert e["n"] == 4 and e["trials"] == 3 and e["complete"] and e["rank"] == 1
        assert len(e["splits"]) == 3
        assert leaderboard_violations(lb) == []
        # without trial 3 the entry is incomplete, whatever the number of runs
        (tmp_path / "more").mkdir()
        for t, s, v in [(1, 0, 80.0), (2, 0, 70.0), (2, 1, 75.0), (1, 2, 70.0)]:
            write_record(tmp_path / "more", split_trial_record(t, s, v))
        lb2 = B.build(B.load_records([tmp_path / "more"]))
        (e2,) = lb2["boards"][0]["entries"]
        assert e2["complete"] is False and e2["rank"] is None
        assert e2["incomplete_reason"] == "trial(s) 3 of 3 have no run"


def test_build_cli_writes_a_valid_leaderboard(tmp_path, capsys):
    write_suite(tmp_path / "runs")
    out = tmp_path / "board.json"
    assert main(["leaderboard", "build", str(tmp_path / "runs"), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "hand / mvc/accuracy@1: 3 measured entries (2 complete, 1 incomplete)" in text
    assert leaderboard_violations(json.loads(out.read_text()), str(out)) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert main(["leaderboard", "build", str(tmp_path / "empty"), "-o", str(out)]) == 2
