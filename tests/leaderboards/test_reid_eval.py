"""The vectorised ReID evaluation against an independent per-query NumPy implementation.

``reference`` below is written from the SYSU-MM01 authors' MATLAB evaluation
(``get_cmc_multi_cam.m``, ``get_map_multi_cam.m``) and AGW's mINP, one query at a time, and
shares no code with ``mv2d_bench.leaderboards.reid_eval``."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mv2d_bench.leaderboards.protocols.regdb import VisibleToThermal
from mv2d_bench.leaderboards.protocols.sysu import (
    AllSearchMultiShot,
    AllSearchSingleShot,
    IndoorSearchSingleShot,
)
from mv2d_bench.leaderboards.reid_eval import (
    evaluate,
    evaluate_distances,
    evaluate_trial_distances,
)


def reference(qf, qids, qcams, gf, gids, gcams, exclude=(), distinct=True, ranks=(1, 10, 20)):
    """Per-query NumPy evaluation (percent): MATLAB-style loop, stable sort, removal, unique."""
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    return reference_from_dist(1.0 - qn @ gn.T, qids, qcams, gids, gcams, exclude, distinct, ranks)


def reference_from_dist(dist, qids, qcams, gids, gcams, exclude, distinct, ranks=(1, 10, 20)):
    counter = np.zeros(dist.shape[1])
    valid, ap_sum, inp_sum = 0, 0.0, 0.0
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        ids_i, cams_i = gids[order], gcams[order]
        drop = np.zeros(len(order), dtype=bool)
        for a, b in exclude:
            if qcams[i] == a:
                drop |= cams_i == b
        ids_i = ids_i[~drop]
        hits = np.flatnonzero(ids_i == qids[i]) + 1  # 1-based image ranks of true matches
        if hits.size == 0:
            continue
        valid += 1
        if distinct:
            _, first = np.unique(ids_i, return_index=True)
            listed = ids_i[np.sort(first)]
            m = listed == qids[i]
        else:  # standard CMC: the first true-match image (AGW: cmc[cmc > 1] = 1)
            m = np.zeros(ids_i.size, dtype=bool)
            m[hits[0] - 1] = True
        counter[: m.size] += m
        ap_sum += np.mean(np.arange(1, hits.size + 1) / hits)
        inp_sum += hits.size / hits[-1]
    cmc = np.cumsum(counter) / valid
    out = {f"rank-{k}": 100 * cmc[k - 1] for k in ranks}
    out["mAP"] = 100 * ap_sum / valid
    out["mINP"] = 100 * inp_sum / valid
    return out


def make_problem(seed, n_ids=25, q_per=8, g_per_cam=6, dim=48, noise=1.3):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_ids + 1) * 3  # not 0..N-1
    centers = rng.normal(size=(ids.max() + 1, dim))
    gids = np.repeat(ids, 4 * g_per_cam)
    gcams = np.tile(np.repeat([1, 2, 4, 5], g_per_cam), n_ids)
    keep = rng.random(gids.size) > 0.15  # ragged groups, some (id, cam) groups thin
    gids, gcams = gids[keep], gcams[keep]
    qids = np.repeat(ids, q_per)
    qcams = rng.choice([3, 6], size=qids.size)
    gf = centers[gids] + noise * rng.normal(size=(gids.size, dim))
    qf = centers[qids] + noise * rng.normal(size=(qids.size, dim))
    return qf, qids, qcams, gf, gids, gcams


def assert_same(ours, ref):
    assert ours.keys() == ref.keys()
    for k in ref:
        assert ours[k] == pytest.approx(ref[k], abs=1e-9), k


@pytest.mark.parametrize("method", ["sort", "compare"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("block", [None, 7])
def test_vectorised_equals_reference_distinct_cmc_with_exclusion(seed, block, method):
    qf, qids, qcams, gf, gids, gcams = make_problem(seed)
    (res,) = evaluate(qf, qids, qcams, gf, gids, gcams, exclude=((3, 2),), block_size=block,
                      device="cpu", method=method)  # fmt: skip
    ref = reference(qf, qids, qcams, gf, gids, gcams, exclude=((3, 2),), distinct=True)
    assert_same(res.metrics(), ref)
    assert 0 < ref["rank-1"] < 100  # a non-trivial problem


@pytest.mark.parametrize("method", ["sort", "compare"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_vectorised_equals_reference_image_cmc_in_blocks(dtype, method):
    qf, qids, qcams, gf, gids, gcams = make_problem(5, noise=1.0)
    (res,) = evaluate(qf, qids, qcams, gf, gids, gcams, cmc="image", block_size=13,
                      device="cpu", dtype=dtype, method=method)  # fmt: skip
    assert_same(res.metrics(), reference(qf, qids, qcams, gf, gids, gcams, distinct=False))


@pytest.mark.parametrize("method", ["sort", "compare"])
@pytest.mark.parametrize("cmc", ["distinct", "image"])
def test_from_distances_equals_reference_including_integer_ties(cmc, method):
    rng = np.random.default_rng(9)
    dist = rng.integers(0, 6, size=(120, 90)).astype(float)  # many exact ties
    qids, gids = rng.integers(0, 12, size=120), rng.integers(0, 12, size=90)
    qcams, gcams = rng.choice([3, 6], size=120), rng.choice([1, 2, 4, 5], size=90)
    res = evaluate_distances(dist, qids, qcams, gids, gcams, exclude=((3, 2),), cmc=cmc,
                             device="cpu", block_size=17, method=method)  # fmt: skip
    ref = reference_from_dist(dist, qids, qcams, gids, gcams, ((3, 2),), cmc == "distinct")
    assert_same(res.metrics(), ref)


@pytest.mark.parametrize("method", ["sort", "compare"])
@pytest.mark.parametrize("cmc", ["distinct", "image"])
def test_from_distances_equals_reference_below_float32_resolution(cmc, method):
    # distinct float64 distances that float32 cannot tell apart (steps of 1e-12 around 1),
    # some beyond float32's range (1e39, -1e300, 1e300) and some exactly tied: "compare"
    # filters in float32 and must fall back to the float64 values wherever they collide
    rng = np.random.default_rng(4)
    q, g = 90, 70
    dist = 1.0 + 1e-12 * rng.integers(0, 40, size=(q, g))
    far = rng.random((q, g)) < 0.1
    dist[far] = rng.choice([1e39, -1e300, 1e300, -3e38], size=int(far.sum()))
    qids, gids = rng.integers(0, 8, size=q), rng.integers(0, 8, size=g)
    qcams, gcams = rng.choice([3, 6], size=q), rng.choice([1, 2, 4, 5], size=g)
    res = evaluate_distances(dist, qids, qcams, gids, gcams, exclude=((3, 2),), cmc=cmc,
                             device="cpu", block_size=11, method=method)  # fmt: skip
    ref = reference_from_dist(dist, qids, qcams, gids, gcams, ((3, 2),), cmc == "distinct")
    assert_same(res.metrics(), ref)
    with np.errstate(over="ignore"):  # collisions in float32
        assert np.unique(dist.astype(np.float32)).size < np.unique(dist).size / 2


@pytest.mark.parametrize("method", ["sort", "compare"])
def test_trial_distances_rank_each_gallery_against_the_reference(method):
    # galleries of different sizes, an identity absent from some, queries of an identity that
    # no gallery holds (never valid), cam-3/cam-2 exclusion: all trials ranked in one call
    qf, qids, qcams, gf, gids, gcams = make_problem(8)
    qids = np.where(np.arange(qids.size) % 17 == 0, 999, qids)
    rng = np.random.default_rng(1)
    trials = [np.sort(rng.choice(gids.size, size=n, replace=False)) for n in (40, 95, 61)]
    trials[1] = trials[1][gids[trials[1]] != gids[0]]
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    dists = [1.0 - qn @ gn[t].T for t in trials]
    results = evaluate_trial_distances(
        dists, qids, qcams, [gids[t] for t in trials], [gcams[t] for t in trials],
        exclude=((3, 2),), device="cpu", method=method,
    )  # fmt: skip
    for d, t, res in zip(dists, trials, results, strict=True):
        ref = reference_from_dist(d, qids, qcams, gids[t], gcams[t], ((3, 2),), True)
        assert_same(res.metrics(), ref)
        assert not res.valid[qids == 999].any()


def test_evaluation_restores_the_torch_thread_count():
    # everything but the matrix product runs on one CPU thread; the caller's count comes back,
    # after an error too
    qf, qids, qcams, gf, gids, gcams = make_problem(2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        evaluate(qf, qids, qcams, gf, gids, gcams, device="cpu")
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="cmc must be"):
            evaluate(qf, qids, qcams, gf, gids, gcams, device="cpu", cmc="bogus")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_distinct_and_image_cmc_differ_where_they_should():
    # gallery ranked: id 2, id 2, id 1 (true): distinct rank 2, image rank 3
    q = np.array([[1.0, 0.0]])
    g = np.array([[1.0, 0.05], [1.0, 0.1], [1.0, 0.2]])
    args = (q, [1], [3], g, [2, 2, 1], [1, 1, 1])
    for method in ("sort", "compare"):
        (d,) = evaluate(*args, cmc="distinct", device="cpu", method=method)
        (i,) = evaluate(*args, cmc="image", device="cpu", method=method)
        assert d.rank.tolist() == [2] and i.rank.tolist() == [3]
        assert d.ap[0] == pytest.approx(1 / 3) and d.inp[0] == pytest.approx(1 / 3)


def test_trials_each_rank_their_own_columns():
    qf, qids, qcams, gf, gids, gcams = make_problem(3)
    rng = np.random.default_rng(0)
    trials = [np.sort(rng.choice(gids.size, size=60, replace=False)) for _ in range(4)]
    results = evaluate(qf, qids, qcams, gf, gids, gcams, trials=trials, exclude=((3, 2),),
                       block_size=50, device="cpu")  # fmt: skip
    for t, res in zip(trials, results, strict=True):
        ref = reference(qf, qids, qcams, gf[t], gids[t], gcams[t], exclude=((3, 2),))
        valid_ref = sum(
            np.any((gids[t] == qids[i]) & ~((qcams[i] == 3) & (gcams[t] == 2)))
            for i in range(qids.size)
        )
        assert res.num_valid == valid_ref
        assert_same(res.metrics(), ref)


def ddag_galleries(gids, gcams, cams, shots):
    """DDAG's process_gallery_sysu, re-implemented on index lists: random.seed(trial), ids
    ascending, cameras in order, random.choice of the sorted files (sample() for multi-shot)."""
    out = []
    for trial in range(10):
        random.seed(trial)
        chosen = []
        for pid in sorted(set(gids.tolist())):
            for cam in cams:
                files = sorted(np.flatnonzero((gids == pid) & (gcams == cam)).tolist())
                if not files:
                    continue
                if shots == 1:
                    chosen.append(random.choice(files))
                else:
                    chosen.extend(random.sample(files, min(shots, len(files))))
        out.append(np.sort(chosen))
    return out


@pytest.mark.parametrize(
    "proto, cams, shots",
    [
        (AllSearchSingleShot, (1, 2, 4, 5), 1),
        (IndoorSearchSingleShot, (1, 2), 1),
        (AllSearchMultiShot, (1, 2, 4, 5), 10),
    ],
)
def test_sysu_protocol_equals_reference_over_ten_ddag_trials(proto, cams, shots):
    qf, qids, qcams, gf, gids, gcams = make_problem(11, g_per_cam=12)
    score = proto(device="cpu").score(
        query_feat=qf, query_ids=qids, query_cams=qcams,
        gallery_feat=gf, gallery_ids=gids, gallery_cams=gcams,
    )  # fmt: skip
    refs = [
        reference(qf, qids, qcams, gf[t], gids[t], gcams[t], exclude=((3, 2),))
        for t in ddag_galleries(gids, gcams, cams, shots)
    ]
    assert len(score.per_trial) == 10
    for ours, ref in zip(score.per_trial, refs, strict=True):
        assert_same(ours, ref)
    for k in score.metrics:
        assert score.metrics[k] == pytest.approx(np.mean([r[k] for r in refs]), abs=1e-9)


def test_regdb_protocol_equals_reference_image_cmc():
    qf, qids, _, gf, gids, _ = make_problem(7)
    score = VisibleToThermal(device="cpu").score(
        query_feat=qf, query_ids=qids, query_cams=np.ones_like(qids),
        gallery_feat=gf, gallery_ids=gids, gallery_cams=np.full_like(gids, 2),
    )  # fmt: skip
    ref = reference(qf, qids, np.ones_like(qids), gf, gids, np.full_like(gids, 2), distinct=False)
    assert_same(score.metrics, ref)
    assert score.per_trial == [score.metrics]
