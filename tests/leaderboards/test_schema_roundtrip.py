"""The shipped JSON Schemas: valid draft 2020-12, package data, and a record and a leaderboard
round-trip through them (write -> read -> schema check -> identical)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mv2d_bench.leaderboards import board as B
from mv2d_bench.leaderboards.records import content_id, finalize, read_record, write_record
from mv2d_bench.leaderboards.schema import SCHEMAS, check, load_schema
from mv2d_bench.leaderboards.testing import mvc_record
from mv2d_bench.leaderboards.validate import leaderboard_violations, reference_violations

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_schemas_are_draft_2020_12_package_data(kind):
    text = resources.files("mv2d_bench").joinpath("schemas", SCHEMAS[kind]).read_text("utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert load_schema(kind) == schema


def test_record_round_trip(tmp_path):
    path = write_record(tmp_path, mvc_record("scene15", "vib", seed=4, errors=7))
    back = read_record(path)
    assert check(back, "run-record") == []
    assert finalize(back) == back  # nothing to fill, the id is the content's
    assert back["run_id"] == content_id(back)
    assert json.loads(path.read_text()) == back


def test_record_schema_requires_every_provenance_field():
    required = load_schema("run-record")["required"]
    assert set(required) == {
        "schema_version", "run_id", "created", "benchmark", "protocol", "objective", "model",
        "config", "seed", "metrics", "per_trial", "cost", "environment",
    }  # fmt: skip
    props = load_schema("run-record")["properties"]
    assert set(props["benchmark"]["required"]) == {
        "name",
        "version",
        "data_sha256",
        "split_id",
        "split_sha256",
        "trial",
    }
    assert set(props["environment"]["required"]) == {
        "package_version",
        "git_revision",
        "torch",
        "python",
        "device",
    }
    assert props["environment"]["properties"]["git_revision"]["type"] == ["string", "null"]


def test_leaderboard_round_trip(tmp_path):
    for s, e in enumerate([1, 0, 2, 1, 1]):
        write_record(tmp_path / "runs", mvc_record("hand", "mv2d", seed=s, errors=e))
    for s, e in enumerate([3, 2]):
        write_record(tmp_path / "runs", mvc_record("hand", "vsd", seed=s, errors=e))
    refs = B.load_references([REPO / "leaderboards" / "references" / "mv2d-paper.json"])
    out = tmp_path / "lb.json"
    lb = B.build(B.load_records([tmp_path / "runs"]), refs, out_path=out)
    B.write_leaderboard(lb, out)
    back = json.loads(out.read_text())
    assert back == lb
    assert check(back, "leaderboard") == []
    assert leaderboard_violations(back, str(out)) == []
    kinds = [(e["label"], e["measured"]) for e in back["boards"][0]["entries"]]
    assert ("mv2d", True) in kinds and ("bottleneck + MV2D (paper)", False) in kinds


def test_leaderboard_schema_rejects_a_reference_row_with_a_rank():
    lb = {
        "schema_version": 1,
        "kind": "mv2d-bench/leaderboard",
        "created": "2026-01-01T00:00:00Z",
        "generator": {"package_version": "0.1.0", "git_revision": None},
        "statistics": {"mean": "m", "std": "s"},
        "boards": [],
    }
    assert check(lb, "leaderboard") == []
    board = {
        "benchmark": "hand", "benchmark_version": 1, "protocol": "mvc/accuracy@1",
        "primary": "accuracy", "direction": "max", "required_seeds": 5, "trials": 1,
        "required_trials": [], "trial_scope": "run",
        "metrics": [{"name": "accuracy", "direction": "max", "low": 0, "high": 100, "unit": "%"}],
        "entries": [{"measured": False, "label": "x", "rank": 1, "source": "Table 7",
                     "objective": {"name": "mv2d"}, "metrics": {"accuracy": {"mean": 99.4}}}],
    }  # fmt: skip
    lb["boards"].append(board)
    assert [v.path for v in check(lb, "leaderboard")] == ["$.boards[0].entries[0].rank"]


def test_the_committed_paper_reference_rows_are_valid():
    path = REPO / "leaderboards" / "references" / "mv2d-paper.json"
    data = json.loads(path.read_text())
    assert reference_violations(data, str(path)) == []
    hand = {r["label"]: r["metrics"]["accuracy"] for r in data["rows"] if r["benchmark"] == "hand"}
    assert hand == {
        "no bottleneck (paper)": 99.20,
        "bottleneck + CIB (paper)": 87.53,
        "bottleneck alone (paper)": 99.29,
        "bottleneck + MV2D (paper)": 99.40,
    }
