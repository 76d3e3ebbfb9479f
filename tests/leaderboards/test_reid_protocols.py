"""SYSU-MM01 and RegDB protocol edge cases, with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from mv2d_bench.leaderboards.protocols import get
from mv2d_bench.leaderboards.protocols.regdb import ThermalToVisible, VisibleToThermal
from mv2d_bench.leaderboards.protocols.sysu import (
    TRIAL_SEEDS,
    AllSearchMultiShot,
    AllSearchSingleShot,
    IndoorSearchMultiShot,
    IndoorSearchSingleShot,
)


def unit(angle_deg: float, axis: int = 1) -> np.ndarray:
    v = np.zeros(3)
    v[0], v[axis] = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    return v


def arrays(qf, qids, qcams, gf, gids, gcams):
    return {
        "query_feat": np.asarray(qf, float), "query_ids": np.asarray(qids),
        "query_cams": np.asarray(qcams), "gallery_feat": np.asarray(gf, float),
        "gallery_ids": np.asarray(gids), "gallery_cams": np.asarray(gcams),
    }  # fmt: skip


# gallery with one image per (identity, camera): every trial draws the whole gallery
GALLERY = dict(
    gf=[unit(0), unit(10), unit(30, axis=2), unit(5, axis=2)],
    gids=[1, 2, 1, 3],
    gcams=[2, 1, 1, 2],
)


def cmc(distinct: list[float], image: list[float] | None = None) -> dict[str, float]:
    """rank-1/5/10/20 of the distinct-identity CMC and (default: the same) the image CMC."""
    image = distinct if image is None else image
    out = {f"rank-{k}": v for k, v in zip((1, 5, 10, 20), distinct, strict=True)}
    out.update({f"rank-{k}-image": v for k, v in zip((1, 5, 10, 20), image, strict=True)})
    return out


def score(proto, qf, qids, qcams, g=GALLERY):
    return proto(device="cpu").score(**arrays(qf, qids, qcams, g["gf"], g["gids"], g["gcams"]))


def test_cam3_queries_lose_cam2_gallery_images_cam6_queries_keep_them():
    # query id 1 at distance 0 from its cam-2 image, then id 2 (10 deg), id 3 (cam 2), id 1 (30)
    from_cam3 = score(AllSearchSingleShot, [unit(0)], [1], [3])
    # cam 2 removed: ranking id 2, id 1 -> distinct rank 2; one match at image rank 2
    assert from_cam3.metrics == pytest.approx(
        {**cmc([0.0, 100.0, 100.0, 100.0]), "mAP": 50.0, "mINP": 50.0}
    )
    from_cam6 = score(AllSearchSingleShot, [unit(0)], [1], [6])
    # ranking: id1 (cam 2), id3 (5 deg), id2 (10 deg), id1 (30 deg): matches at ranks 1 and 4
    assert from_cam6.metrics == pytest.approx(
        {**cmc([100.0] * 4), "mAP": 100 * (1 + 2 / 4) / 2, "mINP": 100 * 2 / 4}
    )
    assert len(from_cam3.per_trial) == 10 and all(
        t == from_cam3.per_trial[0] for t in from_cam3.per_trial
    )


def test_query_whose_only_matches_are_excluded_does_not_count():
    alone = score(AllSearchSingleShot, [unit(0)], [1], [3])
    # identity 3 exists only in cam 2: a cam-3 query of it has no valid match
    both = score(AllSearchSingleShot, [unit(0), unit(5, axis=2)], [1, 3], [3, 3])
    assert both.metrics == pytest.approx(alone.metrics)
    # from cam 6 the same query is valid (its match ranks first) and pulls the means up
    counted = score(AllSearchSingleShot, [unit(0), unit(5, axis=2)], [1, 3], [3, 6])
    assert counted.metrics["rank-1"] == pytest.approx(50.0)
    assert counted.metrics["mAP"] == pytest.approx((50.0 + 100.0) / 2)
    with pytest.raises(ValueError, match="no query has a true match"):
        score(AllSearchSingleShot, [unit(5, axis=2)], [3], [3])


def test_indoor_search_drops_cams_4_and_5():
    g = dict(gf=[unit(0), unit(10), unit(20)], gids=[2, 1, 1], gcams=[4, 1, 5])
    indoor = score(IndoorSearchSingleShot, [unit(0)], [1], [6], g)
    allsearch = score(AllSearchSingleShot, [unit(0)], [1], [6], g)
    assert indoor.metrics["rank-1"] == 100.0 and indoor.metrics["mAP"] == 100.0
    assert allsearch.metrics["rank-1"] == 0.0
    assert allsearch.metrics["mAP"] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)


def test_ties_follow_the_gallery_order_stable_sort():
    same = [unit(0), unit(0)]
    first_wrong = score(AllSearchSingleShot, [unit(0)], [1], [6],
                        dict(gf=same, gids=[5, 1], gcams=[1, 1]))  # fmt: skip
    first_right = score(AllSearchSingleShot, [unit(0)], [1], [6],
                        dict(gf=same, gids=[1, 5], gcams=[1, 1]))  # fmt: skip
    assert first_wrong.metrics["rank-1"] == 0.0 and first_wrong.metrics["mAP"] == 50.0
    assert first_right.metrics["rank-1"] == 100.0 and first_right.metrics["mAP"] == 100.0


@pytest.mark.parametrize(
    "proto", [AllSearchSingleShot, AllSearchMultiShot, IndoorSearchSingleShot,
              IndoorSearchMultiShot]
)  # fmt: skip
def test_identical_features_give_100(proto):
    ids = np.arange(1, 7)
    eye = np.eye(8)
    gids = np.repeat(ids, 4 * 12)
    gcams = np.tile(np.repeat([1, 2, 4, 5], 12), ids.size)
    qids = np.repeat(ids, 5)
    qcams = np.tile([3, 3, 6, 6, 6], ids.size)
    s = proto(device="cpu").score(**arrays(eye[qids], qids, qcams, eye[gids], gids, gcams))
    for trial in s.per_trial:
        assert trial == {**cmc([100.0] * 4), "mAP": 100.0, "mINP": 100.0}


def candidate_gallery(seed=0):
    rng = np.random.default_rng(seed)
    gids, gcams, gidx = [], [], []
    for pid in (4, 9, 13):
        for cam in (1, 2, 4, 5):
            n = int(rng.integers(3, 15))
            gids += [pid] * n
            gcams += [cam] * n
            gidx += list(range(n))
    return np.array(gids), np.array(gcams), np.array(gidx)


def test_trial_seeds_make_the_gallery_reproducible():
    assert TRIAL_SEEDS == tuple(range(10))
    gids, gcams, gidx = candidate_gallery()
    a = AllSearchSingleShot().trial_galleries(gids, gcams)
    b = AllSearchSingleShot().trial_galleries(gids, gcams)
    assert len(a) == 10 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len({tuple(t) for t in a}) > 1  # trials differ
    for t in a:  # one image per (identity, camera)
        assert sorted(zip(gids[t], gcams[t], strict=True)) == sorted(
            {(i, c) for i, c in zip(gids, gcams, strict=True)}
        )
    multi = AllSearchMultiShot().trial_galleries(gids, gcams)
    for t in multi:
        for pid in (4, 9, 13):
            for cam in (1, 2, 4, 5):
                n = int(((gids == pid) & (gcams == cam)).sum())
                assert int(((gids[t] == pid) & (gcams[t] == cam)).sum()) == min(10, n)
    # the same folder images are drawn whatever the npz order, given gallery_index
    perm = np.random.default_rng(1).permutation(gids.size)
    c = AllSearchSingleShot().trial_galleries(gids[perm], gcams[perm], gidx[perm])
    for x, y in zip(a, c, strict=True):
        drawn = sorted(zip(gids[x], gcams[x], gidx[x], strict=True))
        assert drawn == sorted(zip(gids[perm][y], gcams[perm][y], gidx[perm][y], strict=True))


def test_rand_perm_cam_selects_the_official_positions():
    gids, gcams, gidx = candidate_gallery(2)
    rng = np.random.default_rng(3)
    perms: dict[int, dict[int, np.ndarray]] = {c: {} for c in range(1, 7)}
    for pid in (4, 9, 13):
        for cam in (1, 2, 4, 5):
            n = int(((gids == pid) & (gcams == cam)).sum())
            perms[cam][pid] = np.stack([rng.permutation(n) for _ in range(10)])
    proto = AllSearchSingleShot(rand_perm_cam=perms)
    assert proto.gallery_source == "rand_perm_cam"
    shuffle = np.random.default_rng(4).permutation(gids.size)
    trials = proto.trial_galleries(gids[shuffle], gcams[shuffle], gidx[shuffle])
    for t, sel in enumerate(trials):
        got = {
            (int(i), int(c)): int(k)
            for i, c, k in zip(
                gids[shuffle][sel], gcams[shuffle][sel], gidx[shuffle][sel], strict=True
            )
        }
        assert got == {(p, c): int(perms[c][p][t, 0]) for c in (1, 2, 4, 5) for p in (4, 9, 13)}
    multi = AllSearchMultiShot(rand_perm_cam=perms).trial_galleries(gids, gcams)
    sel = multi[3]
    assert sorted(gidx[sel][(gids[sel] == 9) & (gcams[sel] == 2)]) == sorted(
        perms[2][9][3, :10].tolist()
    )  # fmt: skip
    n41 = int(((gids == 4) & (gcams == 1)).sum())
    bad = {c: dict(d) for c, d in perms.items()}
    bad[1][4] = np.stack([np.arange(n41 + 1)] * 10)
    with pytest.raises(ValueError, match=f"cam 1 identity 4: the gallery holds {n41} images, "
                       f"rand_perm_cam permutes {n41 + 1}"):  # fmt: skip
        AllSearchSingleShot(rand_perm_cam=bad).trial_galleries(gids, gcams)
    del perms[5][13]
    with pytest.raises(ValueError, match="no permutation for identity 13 in cam 5"):
        AllSearchSingleShot(rand_perm_cam=perms).trial_galleries(gids, gcams)


def test_bad_arrays_name_the_key(tmp_path):
    base = arrays([unit(0)], [1], [3], [unit(0)], [1], [1])
    proto = AllSearchSingleShot(device="cpu")
    with pytest.raises(ValueError, match="query_cams: cameras \\[1\\]"):
        proto.score(**{**base, "query_cams": np.array([1])})
    with pytest.raises(ValueError, match="gallery_cams: cameras \\[3\\]"):
        proto.score(**{**base, "gallery_cams": np.array([3])})
    with pytest.raises(ValueError, match="query_feat: holds NaN"):
        proto.score(**{**base, "query_feat": np.full((1, 3), np.nan)})
    with pytest.raises(ValueError, match="gallery_ids: expected shape \\(1,\\)"):
        proto.score(**{**base, "gallery_ids": np.array([1, 2])})
    with pytest.raises(ValueError, match="feature sizes differ"):
        proto.score(**{**base, "gallery_feat": np.ones((1, 4))})
    path = tmp_path / "pred.npz"
    np.savez(path, **{k: v for k, v in base.items() if k != "gallery_cams"})
    with pytest.raises(ValueError, match=f"{path}: missing key\\(s\\) gallery_cams"):
        proto.score_npz(str(path))
    np.savez(path, **{**base, "query_cams": np.array([2])})
    with pytest.raises(ValueError, match=f"{path}: key query_cams"):
        proto.score_npz(str(path))


def test_score_npz_reads_optional_gallery_index(tmp_path):
    gids, gcams, gidx = candidate_gallery(5)
    eye = np.eye(16)
    qids = np.array([4, 9, 13, 4])
    base = arrays(eye[qids], qids, [3, 6, 6, 3], eye[gids], gids, gcams)
    path = tmp_path / "p.npz"
    np.savez(path, **base, gallery_index=gidx)
    s = AllSearchSingleShot(device="cpu").score_npz(str(path))
    assert s.metrics["rank-1"] == 100.0 and len(s.per_trial) == 10


def test_regdb_checks_direction_and_scores_one_trial():
    eye = np.eye(5)
    ids = np.array([0, 1, 2, 3, 4])
    v2t = VisibleToThermal(device="cpu").score(
        **arrays(eye[ids], ids, np.ones(5, int), eye[ids], ids, np.full(5, 2))
    )
    assert v2t.metrics == {"rank-1": 100.0, "rank-5": 100.0, "rank-10": 100.0, "rank-20": 100.0,
                           "mAP": 100.0, "mINP": 100.0}  # fmt: skip
    assert v2t.per_trial == [v2t.metrics]
    with pytest.raises(ValueError, match="query_cams: cameras \\[2\\].*visible \\(1\\)"):
        VisibleToThermal().score(
            **arrays(eye[ids], ids, np.full(5, 2), eye[ids], ids, np.ones(5, int))
        )
    t2v = ThermalToVisible(device="cpu").score(
        **arrays(eye[ids], ids, np.full(5, 2), eye[ids], ids, np.ones(5, int))
    )
    assert t2v.metrics["mAP"] == 100.0
    assert VisibleToThermal.trials == 1 and VisibleToThermal.required_seeds == 10
    assert VisibleToThermal.required_trials == tuple(range(1, 11))


def test_registered_protocol_ids():
    from mv2d_bench.leaderboards.protocols import sysu

    ranks = ["rank-1", "rank-5", "rank-10", "rank-20", "mAP", "mINP"]
    image = ["rank-1-image", "rank-5-image", "rank-10-image", "rank-20-image"]
    legacy = {"rank-1", "rank-10", "rank-20", "mAP", "mINP"}
    for pid, cls, names in [
        ("sysu-mm01/all-search/single-shot@2", sysu.OfficialAllSearchSingleShot, ranks + image),
        ("sysu-mm01/all-search/multi-shot@2", sysu.OfficialAllSearchMultiShot, ranks + image),
        ("sysu-mm01/indoor-search/single-shot@2", sysu.OfficialIndoorSearchSingleShot,
         ranks + image),
        ("sysu-mm01/indoor-search/multi-shot@2", sysu.OfficialIndoorSearchMultiShot,
         ranks + image),
        ("sysu-mm01/all-search/single-shot-seeded@1", sysu.SeededAllSearchSingleShot,
         ranks + image),
        ("sysu-mm01/indoor-search/single-shot-seeded@1", sysu.SeededIndoorSearchSingleShot,
         ranks + image),
        ("sysu-mm01/all-search/single-shot@1", AllSearchSingleShot, ranks + image),
        ("sysu-mm01/all-search/multi-shot@1", AllSearchMultiShot, ranks + image),
        ("sysu-mm01/indoor-search/single-shot@1", IndoorSearchSingleShot, ranks + image),
        ("sysu-mm01/indoor-search/multi-shot@1", IndoorSearchMultiShot, ranks + image),
        ("regdb/visible-to-thermal@1", VisibleToThermal, ranks),
        ("regdb/thermal-to-visible@1", ThermalToVisible, ranks),
    ]:  # fmt: skip
        proto = get(pid)
        assert type(proto) is cls and proto.id == pid and proto.primary == "rank-1"
        assert [m.name for m in proto.metrics] == names
        # @1 ids: what their first records lacked is optional, so those records stay valid
        optional = {m.name for m in proto.metrics if m.optional}
        assert optional == (set(names) - legacy if pid.endswith("@1") and "seeded" not in pid
                            else set()), pid  # fmt: skip
        if pid.startswith("sysu-mm01") and pid.endswith("@1") and "seeded" not in pid:
            assert proto.description.startswith("AMBIGUOUS")


def test_finiteness_check_is_exact_even_where_the_quick_sum_overflows():
    import torch

    from mv2d_bench.leaderboards.reid_eval import all_finite

    big = np.full((4, 3), 1e308)  # finite values whose float64 sum overflows
    assert all_finite(big) and all_finite(torch.from_numpy(big))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones((5, 4), np.float32)
        x[3, 1] = bad
        assert not all_finite(x) and not all_finite(torch.from_numpy(x))
        y = big.copy()
        y[0, 0] = bad
        assert not all_finite(y)
    assert all_finite(np.zeros((0, 3))) and all_finite(np.arange(6).reshape(2, 3))
    # the quick sum runs in the features' own dtype: float32 features whose float32 sum
    # overflows are still finite; half precision sums in float32
    big32 = np.full((4, 3), 3e38, np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(big32.sum())
    assert all_finite(big32) and all_finite(torch.from_numpy(big32))
    for dtype in (torch.float16, torch.bfloat16):
        h = torch.full((300, 300), 60000.0).to(dtype)  # a float16 sum would overflow
        assert all_finite(h)
        h[7, 9] = float("nan")
        assert not all_finite(h)
        h[7, 9] = -float("inf")
        assert not all_finite(h)


@pytest.mark.parametrize("indoor", [False, True])
def test_seeded_draw_is_ddags_loop_on_an_interleaved_gallery(indoor):
    """The (identity, camera) groups, found with one sort, are those of the plain loop: ids
    ascending, cams in the protocol's order, members in npz order, groups absent from the
    gallery skipped, other cameras ignored; each trial draws random.Random(t).choice."""
    import random

    from mv2d_bench.leaderboards.protocols import sysu

    rng = np.random.default_rng(7)
    gids = rng.choice([3, 8, 11, 40, 41], size=400)
    gcams = rng.choice([1, 2, 4, 5], size=400)
    gcams[(gids == 8) & (gcams == 2)] = 4  # a group that is absent
    cls = sysu.SeededIndoorSearchSingleShot if indoor else sysu.SeededAllSearchSingleShot
    got = cls().trial_galleries(gids, gcams)
    cams = (1, 2) if indoor else (1, 2, 4, 5)
    for t, sel in enumerate(got):
        r, want = random.Random(t), []
        for pid in sorted(set(gids.tolist())):
            for cam in cams:
                members = [k for k in range(gids.size) if gids[k] == pid and gcams[k] == cam]
                if members:
                    want.append(r.choice(members))
        assert sel.tolist() == want
