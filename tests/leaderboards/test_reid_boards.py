"""Leaderboards of ReID records: SYSU-MM01 records of different gallery sources are never
averaged; records of the @1 ids written before rank-5 and the image-level CMC existed stay valid;
RegDB entries report each trial and the ten-trial mean."""

from __future__ import annotations

import numpy as np
import pytest

from mv2d_bench.cli import main
from mv2d_bench.leaderboards import board as B
from mv2d_bench.leaderboards.records import write_record
from mv2d_bench.leaderboards.testing import (
    DELETE,
    record_with,
    reid_record,
    write_rand_perm_cam_sizes,
)
from mv2d_bench.leaderboards.validate import leaderboard_violations, record_violations

SIZES = {(c, i): 4 for c in (1, 2, 4, 5) for i in range(1, 13)}  # testing.reid_arrays' gallery


@pytest.fixture
def perm_files(tmp_path):
    a, b = tmp_path / "official.mat", tmp_path / "other.mat"
    write_rand_perm_cam_sizes(SIZES, a, seed=0)
    write_rand_perm_cam_sizes(SIZES, b, seed=1)
    return a, b


def build(tmp_path, records):
    folder = tmp_path / "records"
    for r in records:
        write_record(folder, r)
    return B.build(B.load_records([folder]), out_path=tmp_path / "board.json")


def test_records_of_different_gallery_sources_are_never_averaged(tmp_path, perm_files):
    official, other = perm_files
    pid = "sysu-mm01/all-search/single-shot@1"  # the ambiguous id: either source is possible
    seeds = reid_record(pid, seed=0)
    perms = reid_record(pid, seed=0, rand_perm_cam=str(official))
    perms2 = reid_record(pid, seed=0, rand_perm_cam=str(other))
    assert seeds["protocol_gallery"]["source"] == "seeds"
    assert perms["protocol_gallery"]["source"] == "rand_perm_cam"
    # same run but for the gallery: the metrics differ with the gallery ...
    assert seeds["metrics"]["rank-1"] != perms["metrics"]["rank-1"]
    lb = build(tmp_path, [seeds, perms, perms2])
    (board,) = lb["boards"]
    entries = board["entries"]
    # ... and the board keeps three entries of one run each, never one average of them
    assert len(entries) == 3 and all(e["n"] == 1 for e in entries)
    by_source = {
        B._gallery_label(e["protocol_gallery"]): e["metrics"]["rank-1"]["mean"] for e in entries
    }
    assert by_source == {
        "seeds": seeds["metrics"]["rank-1"],
        f"rand_perm_cam:{perms['protocol_gallery']['rand_perm_cam_sha256'][:8]}": perms["metrics"][
            "rank-1"
        ],
        f"rand_perm_cam:{perms2['protocol_gallery']['rand_perm_cam_sha256'][:8]}": perms2[
            "metrics"
        ]["rank-1"],
    }
    assert len({e["label"] for e in entries}) == 3 and all(
        "gallery=" in e["label"] for e in entries
    )
    assert any("different gallery sources" in n for n in board["notes"])
    assert leaderboard_violations(lb) == []
    # two seeds of one gallery source do average
    lb2 = build(tmp_path / "two", [perms, reid_record(pid, seed=1, rand_perm_cam=str(official))])
    (entry,) = lb2["boards"][0]["entries"]
    assert entry["n"] == 2 and entry["protocol_gallery"] == perms["protocol_gallery"]


def test_old_records_without_rank5_and_gallery_source_stay_valid(tmp_path):
    pid = "sysu-mm01/all-search/single-shot@1"
    new = reid_record(pid, seed=0)
    # a record as written before: no rank-5, no image-level CMC, no protocol_gallery
    dropped = ["rank-5", "rank-1-image", "rank-5-image", "rank-10-image", "rank-20-image"]
    old_metrics = {k: v for k, v in new["metrics"].items() if k not in dropped}
    old_trials = [
        {
            "trial": t["trial"],
            "metrics": {k: v for k, v in t["metrics"].items() if k not in dropped},
        }
        for t in new["per_trial"]
    ]
    old = [
        record_with(new, metrics=old_metrics, per_trial=old_trials, protocol_gallery=DELETE,
                    seed=s, config__run__seed=s)
        for s in (0, 1)
    ]  # fmt: skip
    assert all(record_violations(r) == [] for r in old)
    lb = build(tmp_path, old)
    (entry,) = lb["boards"][0]["entries"]
    assert entry["n"] == 2 and "protocol_gallery" not in entry
    assert "rank-5" not in entry["metrics"] and entry["metrics"]["rank-1"]["n"] == 2
    assert leaderboard_violations(lb) == []
    # the new ids require what the old ones made optional
    official = reid_record("sysu-mm01/all-search/single-shot-seeded@1")
    trimmed = record_with(official, metrics={k: v for k, v in official["metrics"].items()
                                             if k != "rank-5"})  # fmt: skip
    paths = [v.path for v in record_violations(trimmed)]
    assert "$.metrics.rank-5" in paths


def test_regdb_entry_lists_each_trial_and_their_mean(tmp_path):
    pid = "regdb/visible-to-thermal@1"
    runs = [reid_record(pid, seed=0, trial=t) for t in range(1, 11)]
    runs.append(reid_record(pid, seed=1, trial=3))  # a second seed of trial 3
    lb = build(tmp_path, runs)
    (entry,) = lb["boards"][0]["entries"]
    assert entry["complete"] and [t["trial"] for t in entry["per_trial"]] == list(range(1, 11))
    by_trial = {t["trial"]: t for t in entry["per_trial"]}
    assert by_trial[3]["runs"] == 2 and by_trial[1]["runs"] == 1
    expect3 = np.mean([r["metrics"]["rank-1"] for r in runs if r["benchmark"]["trial"] == 3])
    assert by_trial[3]["metrics"]["rank-1"] == pytest.approx(expect3, abs=1e-12)
    for name in ("rank-1", "rank-5", "mAP"):
        mean = np.mean([t["metrics"][name] for t in entry["per_trial"]])
        assert entry["metrics"][name]["mean"] == pytest.approx(mean, abs=1e-12)
        assert entry["metrics"][name]["n"] == 10
    assert leaderboard_violations(lb) == []


def test_score_cli_reports_regdb_trials_and_their_mean(tmp_path, capsys):
    import json

    from mv2d_bench.leaderboards.testing import reid_arrays

    pid = "regdb/thermal-to-visible@1"
    files = []
    for t in range(1, 4):
        path = tmp_path / f"t{t}.npz"
        np.savez(path, **reid_arrays(pid, t))
        files += ["--predictions", str(path)]
    assert main(["score", pid, *files, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["per_trial"]) == 3
    from mv2d_bench.leaderboards.protocols import get

    singles = [get(pid).score(**reid_arrays(pid, t)).metrics for t in range(1, 4)]
    assert out["per_trial"] == singles
    for k, v in out["metrics"].items():
        assert v == pytest.approx(np.mean([s[k] for s in singles]), abs=1e-12)
    # one file per trial only where trials are separate runs
    assert main(["score", "sysu-mm01/all-search/single-shot-seeded@1", *files]) == 2
    assert "--predictions: given 3 times" in capsys.readouterr().err
    assert main(["score", pid, "--predictions", files[1], "--rand-perm-cam", files[1]]) == 2
    assert "only the SYSU-MM01 protocols" in capsys.readouterr().err


def test_score_help_marks_the_sysu_at1_ids_ambiguous(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    blocks = text.split("\n  sysu-mm01/")[1:]
    by_id = {b.split()[0]: " ".join(b.split()) for b in blocks}
    for mode in ("all-search", "indoor-search"):
        for shot in ("single-shot", "multi-shot"):
            assert "AMBIGUOUS" in by_id[f"{mode}/{shot}@1"]
            assert "official galleries" in by_id[f"{mode}/{shot}@2"]
        assert "not the official galleries" in by_id[f"{mode}/single-shot-seeded@1"]
    assert "--rand-perm-cam" in text


def test_records_must_say_the_gallery_source_their_id_draws(perm_files):
    from mv2d_bench.leaderboards.records import finalize

    official, _ = perm_files
    at2 = finalize(reid_record("sysu-mm01/all-search/single-shot@2", rand_perm_cam=str(official)))
    seeded = finalize(reid_record("sysu-mm01/all-search/single-shot-seeded@1"))
    assert record_violations(at2) == [] and record_violations(seeded) == []
    cases = [
        (record_with(at2, protocol_gallery=DELETE), "$.protocol_gallery"),
        (record_with(at2, protocol_gallery=seeded["protocol_gallery"]),
         "$.protocol_gallery.source"),
        (record_with(seeded, protocol_gallery=at2["protocol_gallery"]),
         "$.protocol_gallery.source"),
        (record_with(at2, protocol_gallery__rand_perm_cam_sha256=None),
         "$.protocol_gallery.rand_perm_cam_sha256"),
    ]  # fmt: skip
    for bad, path in cases:
        assert path in [v.path for v in record_violations(bad)], path
    # the ambiguous @1 ids take either source, or none (records from before it existed)
    at1 = finalize(reid_record("sysu-mm01/all-search/single-shot@1"))
    assert record_violations(record_with(at1, protocol_gallery=DELETE)) == []
