"""leaderboard validate: accepts a good set, rejects each rule's violation with file, JSON path
and what was expected, and the CLI lists every violation and exits non-zero."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from mv2d_bench.cli import main
from mv2d_bench.leaderboards import board as B
from mv2d_bench.leaderboards.records import write_record
from mv2d_bench.leaderboards.testing import DELETE, mvc_record, record_with
from mv2d_bench.leaderboards.validate import leaderboard_violations, validate_paths


def dump(folder: Path, rec: dict) -> Path:
    """Write a record as-is (bypassing the writer's schema check), named as the writer names."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{rec['benchmark']['name']}-x-s{rec.get('seed')}-{rec['run_id']}.json"
    path.write_text(json.dumps(rec))
    return path


@pytest.fixture
def good(tmp_path):
    """Five seeds of mv2d and vib on Hand, and their leaderboard."""
    runs = tmp_path / "runs"
    for obj, errs in {"mv2d": [1, 1, 0, 2, 1], "vib": [2, 3, 2, 1, 2]}.items():
        for s, e in enumerate(errs):
            write_record(runs, mvc_record("hand", obj, seed=s, errors=e))
    lb = B.build(B.load_records([runs]))
    return runs, lb


def paths(violations):
    return {(Path(v.file).name if v.file else "", v.path) for v in violations}


def test_a_good_set_has_no_violation(good, tmp_path, capsys):
    runs, lb = good
    out = tmp_path / "lb.json"
    B.write_leaderboard(lb, out)
    assert validate_paths([runs, out], require_complete=True)[0] == []
    assert main(["leaderboard", "validate", str(runs), str(out), "--require-complete"]) == 0
    assert "ok: checked 1 leaderboard(s), 10 run-record(s)" in capsys.readouterr().err


def test_missing_provenance_fields(tmp_path):
    rec = record_with(
        mvc_record("hand", "mv2d"),
        benchmark__data_sha256=DELETE,
        objective__distribution=DELETE,
        environment__git_revision=DELETE,
        environment__torch=DELETE,
    )
    f = dump(tmp_path, rec)
    got = validate_paths([f])[0]
    assert paths(got) == {
        (f.name, "$.benchmark.data_sha256"),
        (f.name, "$.objective.distribution"),
        (f.name, "$.environment.git_revision"),
        (f.name, "$.environment.torch"),
    }
    assert all("required field is missing" in v.message for v in got)


def test_out_of_range_metric_in_a_record_and_in_a_leaderboard(good, tmp_path):
    rec = mvc_record("hand", "mv2d")
    bad = record_with(
        rec,
        metrics__accuracy=101.5,
        per_trial=[{"trial": 1, "metrics": {"accuracy": 101.5}}],
    )
    f = dump(tmp_path, bad)
    got = validate_paths([f])[0]
    assert paths(got) == {
        (f.name, "$.metrics.accuracy"),
        (f.name, "$.per_trial[0].metrics.accuracy"),
    }
    assert "101.5 is not a finite number in [0, 100] %" in got[0].message
    _, lb = good
    lb = copy.deepcopy(lb)
    stat = lb["boards"][0]["entries"][0]["metrics"]["accuracy"]
    stat["values"][0] = -3.0
    got = leaderboard_violations(lb, "lb.json")
    assert ("lb.json", "$.boards[0].entries[0].metrics.accuracy.values[0]") in paths(got)


def test_duplicated_run_id_across_record_files_and_within_a_leaderboard(good, tmp_path):
    runs, lb = good
    first = sorted(runs.glob("*.json"))[0]
    copy_path = tmp_path / "copy" / f"hand-mv2d-s9-{first.name[-21:]}"
    copy_path.parent.mkdir()
    shutil.copy(first, copy_path)
    got = validate_paths([runs, copy_path.parent])[0]
    assert len(got) == 1 and got[0].path == "$.run_id"
    assert got[0].message.startswith("duplicated run id")
    lb = copy.deepcopy(lb)
    e0, e1 = lb["boards"][0]["entries"][:2]
    e1["runs"][0]["run_id"] = e0["runs"][0]["run_id"]
    got = leaderboard_violations(lb, "lb.json")
    assert ("lb.json", "$.boards[0].entries[1].runs[0].run_id") in paths(got)


def test_too_few_seeds(good, tmp_path):
    runs, lb = good
    few = tmp_path / "few"
    for s in range(3):
        write_record(few, mvc_record("hand", "cib", seed=s, errors=4))
    assert validate_paths([few])[0] == []  # a partial set of runs is not wrong in itself
    got = validate_paths([few], require_complete=True)[0]
    assert len(got) == 1 and "too few seeds" in got[0].message and "3 of 5" in got[0].message
    lb = copy.deepcopy(lb)
    e = lb["boards"][0]["entries"][0]  # claim completeness with 3 of 5 seeds
    e["runs"], e["seeds"], e["n"] = e["runs"][:3], [0, 1, 2], 3
    e["metrics"]["accuracy"] = B.stats([r["metrics"]["accuracy"] for r in e["runs"]])
    got = leaderboard_violations(lb, "lb.json")
    assert paths(got) == {("lb.json", "$.boards[0].entries[0].complete")}
    assert "3 of 5 required seeds" in got[0].message


def test_mixed_split_ids(good, tmp_path):
    runs, lb = good
    rec = mvc_record("hand", "mv2d", seed=7, errors=1)
    other = record_with(rec, benchmark__split_id="mvc-other", benchmark__split_sha256="e" * 64)
    f = dump(runs, other)
    got = validate_paths([runs])[0]
    assert len(got) == 1 and got[0].path == "$.benchmark.split_id"
    assert got[0].message.startswith("mixed split ids") and f.name in {
        Path(v.file).name for v in got
    }
    lb = copy.deepcopy(lb)
    run = lb["boards"][0]["entries"][0]["runs"][2]
    run["split_id"], run["split_sha256"] = "mvc-other", "e" * 64
    got = leaderboard_violations(lb, "lb.json")
    msgs = {v.path: v.message for v in got}
    assert msgs["$.boards[0].entries[0].runs"].startswith("mixed split ids")
    assert "$.boards[0].entries[0].splits" in msgs


def test_one_split_id_with_two_index_lists(tmp_path):
    a = write_record(tmp_path, mvc_record("hand", "mv2d", seed=0))
    rec = record_with(mvc_record("hand", "vib", seed=0), benchmark__split_sha256="d" * 64)
    b = dump(tmp_path, rec)
    got = validate_paths([a, b])[0]
    assert [v.path for v in got] == ["$.benchmark.split_sha256"]


def test_protocol_version_mismatch(good, tmp_path):
    runs, lb = good
    f = dump(tmp_path, record_with(mvc_record("hand", "mv2d"), protocol="mvc/accuracy@9"))
    (v,) = validate_paths([f])[0]
    assert v.path == "$.protocol"
    assert "protocol version mismatch: mvc/accuracy@9 is not installed" in v.message
    assert "mvc/accuracy@1" in v.message
    lb = copy.deepcopy(lb)
    lb["boards"][0]["entries"][1]["runs"][4]["protocol"] = "mvc/accuracy@9"
    got = leaderboard_violations(lb, "lb.json")
    assert paths(got) == {("lb.json", "$.boards[0].entries[1].runs[4].protocol")}
    assert any(v.message.startswith("protocol version mismatch") for v in got)


def test_a_leaderboard_must_say_what_its_records_say(good, tmp_path, capsys):
    runs, lb = good
    lb = copy.deepcopy(lb)
    e = lb["boards"][0]["entries"][0]
    e["runs"][1]["metrics"]["accuracy"] = 100.0  # a consistent, but invented, number
    e["metrics"]["accuracy"] = B.stats([r["metrics"]["accuracy"] for r in e["runs"]])
    out = tmp_path / "pub" / "board.json"
    B.write_leaderboard(lb, out)
    got = validate_paths([tmp_path / "pub"])[0]  # a folder: its leaderboards are found too
    assert [v.path for v in got] == ["$.boards[0].entries[0].runs[1].metrics"]
    assert "but its record" in got[0].message and "'accuracy': 99.5" in got[0].message
    (tmp_path / "pub" / "notes.json").write_text("{}")  # other JSON in a folder is not checked
    assert main(["leaderboard", "validate", str(tmp_path / "pub")]) == 1
    assert "checked 1 leaderboard(s)" in capsys.readouterr().err


def test_edited_record_and_tampered_statistics_are_caught(good, tmp_path):
    runs, lb = good
    f = sorted(runs.glob("hand-mv2d-*.json"))[0]
    data = json.loads(f.read_text())
    data["metrics"]["accuracy"] = 100.0
    data["per_trial"][0]["metrics"]["accuracy"] = 100.0
    f.write_text(json.dumps(data))
    (v,) = validate_paths([f])[0]
    assert v.path == "$.run_id" and "does not match the record's content" in v.message
    lb = copy.deepcopy(lb)
    stat = lb["boards"][0]["entries"][0]["metrics"]["accuracy"]
    stat["mean"] += 0.1
    stat["std"] = 0.0
    got = {v.path: v.message for v in leaderboard_violations(lb)}
    assert "expected the mean" in got["$.boards[0].entries[0].metrics.accuracy.mean"]
    assert "expected the sample std (ddof=1)" in got["$.boards[0].entries[0].metrics.accuracy.std"]


def test_rank_order_and_unranked_incomplete_entries(good):
    _, lb = good
    lb = copy.deepcopy(lb)
    a, b = lb["boards"][0]["entries"][:2]
    a["rank"], b["rank"] = 2, 1
    got = paths(leaderboard_violations(lb, "x"))
    assert got == {("x", "$.boards[0].entries[0].rank"), ("x", "$.boards[0].entries[1].rank")}


def test_cli_lists_every_violation_and_exits_non_zero(tmp_path, capsys):
    rec = mvc_record("hand", "mv2d")
    dump(tmp_path, record_with(rec, seed=1, metrics__accuracy=-1.0))
    dump(tmp_path, record_with(rec, seed=2, environment=DELETE, protocol="mvc/accuracy@9"))
    (tmp_path / "broken-0123456789abcdef.json").write_text("{not json")
    expected, _ = validate_paths([tmp_path])
    assert len(expected) >= 4
    assert main(["leaderboard", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines == [str(v) for v in expected]
    assert f"{len(expected)} violation(s) in 3 file(s)" in out.err
    assert any("not valid JSON" in line for line in lines)
    assert main(["leaderboard", "validate", str(tmp_path), "--json"]) == 1
    as_json = json.loads(capsys.readouterr().out)
    assert as_json == [v.as_dict() for v in expected]
