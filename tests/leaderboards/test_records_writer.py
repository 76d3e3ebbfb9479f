"""The run-record writer: atomic, content-named, schema-checked, never silently overwriting."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mv2d_bench.leaderboards.records import (
    RECORD_NAME_RE,
    RecordError,
    content_id,
    finalize,
    find_records,
    git_revision,
    read_record,
    strip_volatile,
    write_record,
)
from mv2d_bench.leaderboards.schema import check
from mv2d_bench.leaderboards.testing import accuracy_of, mvc_record

REPO = Path(__file__).resolve().parents[2]


def test_written_record_passes_schema_and_is_named_by_content(tmp_path):
    path = write_record(tmp_path, mvc_record("hand", "mv2d", seed=3, errors=1))
    rec = read_record(path)
    assert check(rec, "run-record") == []
    assert rec["run_id"] == content_id(rec)
    assert path.name == f"hand-mv2d-s3-{rec['run_id']}.json"
    assert RECORD_NAME_RE.match(path.name)
    assert rec["metrics"]["accuracy"] == accuracy_of("hand", 1) == 99.5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_same_record_twice_is_a_no_op_and_a_different_one_never_overwrites(tmp_path):
    rec = mvc_record("hand", "vib", seed=0, errors=2)
    p1 = write_record(tmp_path, rec)
    p2 = write_record(tmp_path, rec)
    assert p1 == p2 and len(list(tmp_path.iterdir())) == 1
    original = p1.read_text()
    p1.write_text(original.replace('"vib"', '"VIB"'))  # same name, other content
    tampered = p1.read_text()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_record(tmp_path, rec)
    assert p1.read_text() == tampered


def test_schema_violations_are_listed_and_nothing_is_written(tmp_path):
    rec = mvc_record("hand", "mv2d")
    del rec["benchmark"]["split_sha256"]
    del rec["environment"]["git_revision"]
    rec["seed"] = -1
    with pytest.raises(RecordError) as err:
        write_record(tmp_path, rec)
    msg = str(err.value)
    assert "$.benchmark.split_sha256: required field is missing" in msg
    assert "$.environment.git_revision: required field is missing" in msg
    assert "$.seed" in msg
    assert list(tmp_path.iterdir()) == []


def test_nan_metric_is_refused_naming_the_field(tmp_path):
    rec = mvc_record("hand", "mv2d")
    rec["metrics"]["accuracy"] = float("nan")
    with pytest.raises(RecordError, match=r"\$\.metrics\.accuracy: nan is not allowed"):
        write_record(tmp_path, rec)
    assert list(tmp_path.iterdir()) == []


def test_numpy_values_become_plain_json(tmp_path):
    rec = mvc_record("hand", "mv2d")
    rec["seed"] = np.int64(2)
    rec["metrics"]["accuracy"] = np.float32(99.5)
    rec["model"]["params"]["view_dims"] = np.array([240, 76])
    rec = finalize(rec)
    assert type(rec["seed"]) is int and rec["model"]["params"]["view_dims"] == [240, 76]
    path = write_record(tmp_path, rec)
    assert json.loads(path.read_text())["metrics"]["accuracy"] == 99.5


def test_created_needs_a_utc_offset(tmp_path):
    rec = mvc_record("hand", "mv2d", created="2026-01-15T10:00:00")
    with pytest.raises(RecordError, match=r"\$\.created"):
        write_record(tmp_path, rec)


def test_read_record_names_the_file(tmp_path):
    bad = tmp_path / "x-0123456789abcdef.json"
    bad.write_text("[1, 2]")
    with pytest.raises(RecordError, match="x-0123456789abcdef.json: expected a JSON object"):
        read_record(bad)
    bad.write_text("{")
    with pytest.raises(RecordError, match="not valid JSON"):
        read_record(bad)


def test_find_records_takes_record_names_only(tmp_path):
    p = write_record(tmp_path / "a" / "b", mvc_record("hand", "mv2d"))
    (tmp_path / "a" / "split.json").write_text("{}")  # a harness side file, not a record
    assert list(find_records([tmp_path])) == [p]
    with pytest.raises(FileNotFoundError, match="expected run records"):
        list(find_records([tmp_path / "missing"]))


def test_git_revision_of_this_checkout_and_of_a_non_repository(tmp_path):
    assert git_revision(tmp_path) is None
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    rev = git_revision()
    import mv2d_bench

    # under tox the package is an installed wheel in .tox/ (inside the checkout, but not it)
    checkout_init = (REPO / "mv2d_bench" / "__init__.py").resolve()
    running_from_checkout = Path(mv2d_bench.__file__).resolve() == checkout_init
    if head and running_from_checkout:
        assert rev is not None and re.fullmatch(r"[0-9a-f]{40}(-dirty)?", rev)
        assert rev.startswith(head)
    else:  # an installed wheel (as under tox) has no revision of its own
        assert rev is None
    # asked about the checkout explicitly, the revision is the checkout's HEAD
    if head:
        explicit = git_revision(REPO)
        assert explicit is not None and explicit.startswith(head)


def test_volatile_config_keys_are_dropped_at_any_depth():
    cfg = {"run": {"seed": 3, "root": "/data", "objective": "mv2d"}, "train": {"epochs": 5}}
    assert strip_volatile(cfg) == {"run": {"objective": "mv2d"}, "train": {"epochs": 5}}
