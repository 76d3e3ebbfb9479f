"""mvc/accuracy@2 leaderboards: one entry per setting over 5 card splits x 2 seeds; mean, std,
95 % CI, paired differences to the best entry and paired t-test p-values against scipy computed
from the record files; the rank rule; validation of all of it."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from scipy import stats

from mv2d_bench.leaderboards import board as B
from mv2d_bench.leaderboards.records import read_record, write_record
from mv2d_bench.leaderboards.testing import mvc_v2_record
from mv2d_bench.leaderboards.validate import leaderboard_violations, validate_paths

SPLITS = (300, 301, 302, 303, 304)  # Hand's data card (MvNNcor's seed first)
SEEDS = (0, 1)


def write_setting(tmp_path, objective, errors, **kw):
    """One run per (split, seed); ``errors[k]`` test mistakes of the k-th (split, seed) pair."""
    paths = []
    for k, (s, seed) in enumerate((s, seed) for s in SPLITS for seed in SEEDS):
        rec = mvc_v2_record("hand", objective, split_seed=s, seed=seed, errors=errors[k], **kw)
        paths.append(write_record(tmp_path, rec))
    return paths


# best: ~1 error; close: differs by chance; worse: 5 to 7 more errors on every pair
BEST = [1, 0, 2, 1, 1, 0, 2, 1, 0, 1]
CLOSE = [1, 1, 2, 0, 2, 0, 1, 1, 1, 0]
WORSE = [e + d for e, d in zip(BEST, [6, 5, 7, 6, 6, 5, 7, 6, 6, 7], strict=True)]


@pytest.fixture
def board_and_records(tmp_path):
    files = {
        "mv2d": write_setting(tmp_path, "mv2d", BEST),
        "vsd": write_setting(tmp_path, "vsd", CLOSE),
        "vib": write_setting(tmp_path, "vib", WORSE),
    }
    lb = B.build(B.load_records([tmp_path]))
    (board,) = lb["boards"]
    return lb, board, files


def _from_records(paths):
    recs = [read_record(p) for p in paths]
    return {(r["benchmark"]["split_id"], r["seed"]): r["metrics"]["accuracy"] for r in recs}


def test_one_entry_per_setting_spans_the_five_splits(board_and_records):
    _, board, _ = board_and_records
    assert board["protocol"] == "mvc/accuracy@2" and board["statistics"] == "paired"
    assert board["required_splits"] == 5 and board["required_seeds"] == 2
    assert len(board["entries"]) == 3
    for e in board["entries"]:
        assert e["complete"] and e["n"] == 10 and e["seeds"] == [0, 1]
        assert [s["id"] for s in e["splits"]] == [f"mvnncor/seed-{s}" for s in SPLITS]
        assert "last_epoch_accuracy" in e["metrics"]


def test_mean_std_and_ci_equal_scipy_on_the_record_files(board_and_records):
    _, board, files = board_and_records
    for e in board["entries"]:
        values = np.array(list(_from_records(files[e["objective"]["name"]]).values()))
        stat = e["metrics"]["accuracy"]
        assert stat["mean"] == pytest.approx(values.mean())
        assert stat["std"] == pytest.approx(values.std(ddof=1))
        lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        assert stat["ci95"] == pytest.approx([lo, hi])


def test_paired_differences_and_p_values_equal_scipy_ttest_rel(board_and_records):
    _, board, files = board_and_records
    by = {e["objective"]["name"]: e for e in board["entries"]}
    best = _from_records(files["mv2d"])
    assert by["mv2d"]["paired"]["best"] is True and by["mv2d"]["rank"] == 1
    for name in ("vsd", "vib"):
        other = _from_records(files[name])
        keys = sorted(best)
        a = np.array([other[k] for k in keys])
        b = np.array([best[k] for k in keys])
        diff = by[name]["paired"]["difference"]
        assert diff["n"] == 10
        assert diff["mean"] == pytest.approx((a - b).mean())
        assert diff["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
        d = a - b
        lo, hi = stats.t.interval(0.95, 9, loc=d.mean(), scale=stats.sem(d))
        assert diff["ci95"] == pytest.approx([lo, hi])
        assert by[name]["paired"]["against"] == by["mv2d"]["key"]


def test_entries_not_significantly_worse_than_the_best_share_rank_one(board_and_records):
    _, board, _ = board_and_records
    by = {e["objective"]["name"]: e for e in board["entries"]}
    assert by["vsd"]["paired"]["difference"]["p_value"] >= 0.05
    assert by["vsd"]["rank"] == 1 and by["vsd"]["paired"]["significantly_worse"] is False
    assert by["vib"]["paired"]["difference"]["p_value"] < 0.05
    assert by["vib"]["rank"] == 3 and by["vib"]["paired"]["significantly_worse"] is True


def test_a_valid_paired_board_validates_and_a_tampered_one_does_not(board_and_records, tmp_path):
    lb, _, _ = board_and_records
    assert leaderboard_violations(lb, "lb.json") == []
    bad = copy.deepcopy(lb)
    by = {e["objective"]["name"]: e for e in bad["boards"][0]["entries"]}
    by["vib"]["rank"] = 1
    by["vsd"]["paired"]["difference"]["p_value"] = 0.5
    by["mv2d"]["metrics"]["accuracy"]["ci95"] = [0.0, 100.0]
    got = {v.path.rsplit(".", 1)[-1] for v in leaderboard_violations(bad, "lb.json")}
    assert {"rank", "paired", "ci95"} <= got


def test_an_entry_missing_a_split_or_a_seed_is_incomplete(tmp_path):
    paths = write_setting(tmp_path, "mv2d", BEST)
    paths[-1].unlink()  # split 304, seed 1
    lb = B.build(B.load_records([tmp_path]))
    (e,) = lb["boards"][0]["entries"]
    assert not e["complete"] and e["rank"] is None
    assert "mvnncor/seed-304" in e["incomplete_reason"]
    for p in paths[-4:-1]:
        p.unlink()  # all of split 303 and the rest of 304
    lb = B.build(B.load_records([tmp_path]))
    assert lb["boards"][0]["entries"][0]["incomplete_reason"] == "3 of 5 required splits"


def test_records_off_the_card_or_of_the_wrong_procedure_are_refused(tmp_path):
    rec = mvc_v2_record("hand", "mv2d", split_seed=7)  # 7 is not one of Hand's split seeds
    path = write_record(tmp_path, rec)
    rec2 = mvc_v2_record("hand", "vib", split_seed=300)
    rec2["config"]["data"]["split"] = "stratified"
    path2 = write_record(tmp_path, rec2)
    problems = {v.path: v.message for v in validate_paths([path, path2])[0]}
    assert "mvnncor/seed-7" in problems["$.benchmark.split_id"]
    assert "'mvnncor' split procedure" in problems["$.config.data.split"]


def test_a_run_recorded_twice_on_one_split_stops_the_build(tmp_path):
    write_setting(tmp_path, "mv2d", BEST)
    dup = mvc_v2_record("hand", "mv2d", split_seed=302, seed=1, errors=5)
    write_record(tmp_path / "more", dup)
    with pytest.raises(B.BuildError, match="on split mvnncor/seed-302"):
        B.build(B.load_records([tmp_path]))


def test_the_board_is_json_and_reports_what_its_statistics_mean(board_and_records):
    lb, _, _ = board_and_records
    assert "ci95" in lb["statistics"] and "paired" in lb["statistics"]
    json.dumps(lb, allow_nan=False)


def test_degenerate_differences():
    from mv2d_bench.leaderboards.paired import paired_difference

    a = {"s#1": 90.0, "s#2": 91.0, "s#3": 92.0}
    same = paired_difference(a, dict(a))
    assert same["p_value"] == 1.0 and same["ci95"] == [0.0, 0.0]
    shifted = paired_difference({k: v - 2 for k, v in a.items()}, a)
    assert shifted["p_value"] == 0.0 and shifted["mean"] == pytest.approx(-2.0)
    assert paired_difference({"s#1": 1.0}, {"s#1": 2.0}) is None  # one pair: no test


def test_compare_pairs_runs_by_split_and_seed(tmp_path):
    from mv2d_bench.leaderboards.compare import compare, format_text

    before = write_setting(tmp_path / "a", "mv2d", BEST)
    after = write_setting(tmp_path / "b", "mv2d", WORSE)
    lb_a = B.build(B.load_records([tmp_path / "a"]))
    lb_b = B.build(B.load_records([tmp_path / "b"]))
    (row,) = compare(lb_a, lb_b)["entries"]
    m = row["metrics"]["accuracy"]
    a, b = _from_records(before), _from_records(after)
    keys = sorted(a)
    want = stats.ttest_rel([b[k] for k in keys], [a[k] for k in keys])
    assert m["paired"]["n"] == 10 and m["paired"]["p_value"] == pytest.approx(want.pvalue)
    assert m["significant"] is True and m["direction"] == "worse"
    assert "paired over 10 (split, seed) pairs" in format_text(compare(lb_a, lb_b))
    # different pairs on the two sides: no paired statistics (Welch only)
    write_record(tmp_path / "c", mvc_v2_record("hand", "mv2d", split_seed=300, seed=5))
    lb_c = B.build(B.load_records([tmp_path / "b", tmp_path / "c"]))
    rows = [r for r in compare(lb_a, lb_c)["entries"] if r["status"] != "only-a"]
    assert all("paired" not in r["metrics"]["accuracy"] for r in rows)


def test_rendered_board_shows_ci_and_paired_columns(board_and_records):
    from mv2d_bench.leaderboards.render import markdown, rows

    lb, board, _ = board_and_records
    header, body = rows(board)
    assert "p (paired t)" in header and "Δ accuracy vs best [95 % CI]" in header
    by = {e["objective"]["name"]: cells for e, cells in zip(board["entries"], body, strict=True)}
    i = header.index("p (paired t)")
    assert by["mv2d"][i - 1] == "best"
    p = next(e for e in board["entries"] if e["objective"]["name"] == "vib")["paired"]
    assert by["vib"][i] == f"{p['difference']['p_value']:.3g}"
    assert "[" in by["vsd"][2]  # the accuracy cell carries its 95 % CI
    assert "share rank 1" in markdown(lb)
