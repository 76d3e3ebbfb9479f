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

RANKS = (1, 5, 10, 20)


def reference(qf, qids, qcams, gf, gids, gcams, exclude=(), distinct=True, ranks=RANKS):
    """Per-query NumPy evaluation (percent): MATLAB-style loop, stable sort, removal, unique."""
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    return reference_from_dist(1.0 - qn @ gn.T, qids, qcams, gids, gcams, exclude, distinct, ranks)


def reference_from_dist(dist, qids, qcams, gids, gcams, exclude, distinct, ranks=RANKS):
    """Rank-k of the CMC (distinct identities, or images), mAP and mINP; with ``distinct`` also
    the image-level CMC as rank-k-image (the first true-match image within k)."""
    counter = np.zeros(dist.shape[1])
    image_counter = np.zeros(dist.shape[1])
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
        image_counter[hits[0] - 1] += 1
        ap_sum += np.mean(np.arange(1, hits.size + 1) / hits)
        inp_sum += hits.size / hits[-1]
    cmc = np.cumsum(counter) / valid
    out = {f"rank-{k}": 100 * cmc[k - 1] for k in ranks}
    out["mAP"] = 100 * ap_sum / valid
    out["mINP"] = 100 * inp_sum / valid
    if distinct:
        image_cmc = np.cumsum(image_counter) / valid
        out.update({f"rank-{k}-image": 100 * image_cmc[k - 1] for k in ranks})
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
@pytest.mark.parametrize("product", ["float64", "float32"])
def test_vectorised_equals_reference_image_cmc_in_blocks(product, method):
    qf, qids, qcams, gf, gids, gcams = make_problem(5, noise=1.0)
    (res,) = evaluate(qf, qids, qcams, gf, gids, gcams, cmc="image", block_size=13,
                      device="cpu", product=product, method=method)  # fmt: skip
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


def near_tie_problem(seed: int, dim: int = 200):
    """Gallery images that are exact copies or tiny perturbations (1e-7 .. 1e-5) of others, so
    that many distances are closer than float32 products can tell apart (but far apart in
    float64: gaps of ~1e-9 and more, not the last bits of a float64 distance)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(40, dim))
    copies = [base]
    for eps in (0.0, 1e-7, 1e-6, 1e-5):
        copies.append(base + eps * rng.normal(size=base.shape))
    gf = np.concatenate(copies)
    gids = np.tile(rng.integers(1, 9, size=40), len(copies))
    gids[rng.random(gids.size) < 0.3] = rng.integers(1, 9)  # copies of other identities too
    gcams = rng.choice([1, 2, 4, 5], size=gids.size)
    pick = rng.integers(0, 40, size=60)
    qf = base[pick] + rng.choice([1e-3, 0.05, 0.5], size=(60, 1)) * rng.normal(size=(60, dim))
    qids = rng.integers(1, 9, size=60)
    qcams = rng.choice([3, 6], size=60)
    return qf, qids, qcams, gf, gids, gcams


def spy_recount(monkeypatch) -> list[int]:
    """Record how many (query, trial) rows each call of the full-precision recount gets."""
    import mv2d_bench.leaderboards.reid_eval as E

    calls: list[int] = []
    real = E._recount

    def spy(dex, *args):
        calls.append(len(dex))
        return real(dex, *args)

    monkeypatch.setattr(E, "_recount", spy)
    return calls


def same_results(a, b):
    for x, y in zip(a, b, strict=True):
        for f in ("rank", "rank_image", "valid"):
            assert np.array_equal(getattr(x, f), getattr(y, f)), f
        for f in ("ap", "inp"):
            assert np.array_equal(getattr(x, f), getattr(y, f), equal_nan=True), f


@pytest.mark.parametrize("cmc", ["distinct", "image"])
@pytest.mark.parametrize("seed", [0, 1])
def test_float32_products_give_the_float64_ranking_on_near_ties(cmc, seed, monkeypatch):
    qf, qids, qcams, gf, gids, gcams = near_tie_problem(seed)
    trials = [np.arange(gids.size), np.arange(0, gids.size, 2), np.arange(gids.size)[::-1]]
    kw = dict(trials=trials, exclude=((3, 2),), cmc=cmc, device="cpu", method="compare")
    f64 = evaluate(qf, qids, qcams, gf, gids, gcams, product="float64", **kw)
    recounted = spy_recount(monkeypatch)
    f32 = evaluate(qf, qids, qcams, gf, gids, gcams, product="float32", block_size=11, **kw)
    assert sum(recounted) > 0  # the near-ties were recounted from float64 products
    same_results(f32, f64)
    # and both are the reference's numbers (one float64 product for all trials: a product of a
    # re-ordered gallery may round exact duplicates differently in the last bit)
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    dist = 1.0 - qn @ (gf / np.linalg.norm(gf, axis=1, keepdims=True)).T
    for res, t in zip(f64, trials, strict=True):
        ref = reference_from_dist(dist[:, t], qids, qcams, gids[t], gcams[t], ((3, 2),),
                                  cmc == "distinct")  # fmt: skip
        assert_same(res.metrics(), ref)


def test_float32_products_recount_only_rows_with_near_ties(monkeypatch):
    qf, qids, qcams, gf, gids, gcams = make_problem(3, dim=256)  # no near-ties here
    recounted = spy_recount(monkeypatch)
    kw = dict(exclude=((3, 2),), device="cpu", method="compare")
    (a,) = evaluate(qf, qids, qcams, gf, gids, gcams, product="float32", **kw)
    (b,) = evaluate(qf, qids, qcams, gf, gids, gcams, product="float64", **kw)
    same_results([a], [b])
    assert sum(recounted) < 0.1 * qids.size


@pytest.mark.parametrize("dim", [64, 200, 2048])
def test_float32_product_error_bound_holds(dim):
    from mv2d_bench.leaderboards.reid_eval import _Float32Product, product_error

    rng = np.random.default_rng(dim)
    q = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(300, dim))), dim=1)
    g = torch.nn.functional.normalize(torch.from_numpy(rng.random(size=(257, dim))), dim=1)
    g = torch.cat([g, torch.zeros(1, dim, dtype=torch.float64)])  # the "absent" row
    d64 = 1.0 - q @ g.T
    d32 = _Float32Product(q, g, torch.device("cpu"), 1).distances(0, 300)
    err = (d32[:, :-1] - d64[:, :-1]).abs().max().item()
    assert 0 < err <= product_error(dim) + 2.0**-50
    assert torch.isinf(d32[:, -1]).all()
    # the bound is not vacuous: ~4e-6 whatever the dimension (chunks of 64 products)
    assert product_error(dim) < 5e-6


def agw_eval_sysu(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20):
    """AGW's ``eval_sysu`` (mangye16/Cross-Modal-Re-ID-baseline, eval_metrics.py), written from
    its definitions: rank the gallery (stable here, AGW's argsort is not), drop cam-2 images for
    cam-3 queries, CMC over the distinct identities in ranked order, standard CMC (first true
    image), AP = mean of precision at each true match, INP = matches / rank of the last one.
    Returns percent values keyed like the protocols' metrics."""
    order = np.argsort(dist, axis=1, kind="stable")
    distinct = np.zeros(max_rank)
    standard = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(dist.shape[0]):
        ranked = order[i]
        keep = ~((q_cams[i] == 3) & (g_cams[ranked] == 2))
        labels = g_pids[ranked][keep]
        _, first = np.unique(labels, return_index=True)
        new_cmc = (labels[np.sort(first)] == q_pids[i]).astype(int).cumsum()[:max_rank]
        matches = (labels == q_pids[i]).astype(int)
        if not matches.any():
            continue
        distinct[: new_cmc.size] += new_cmc
        cmc = matches.cumsum()
        last = np.flatnonzero(matches).max()
        inps.append(cmc[last] / (last + 1.0))
        cmc = np.minimum(cmc, 1)[:max_rank]
        standard[: cmc.size] += cmc
        aps.append(
            (matches.cumsum() / np.arange(1, matches.size + 1) * matches).sum() / matches.sum()
        )
    n = len(aps)
    out = {f"rank-{k}": 100 * distinct[k - 1] / n for k in (1, 5, 10, 20)}
    out["mAP"], out["mINP"] = 100 * np.mean(aps), 100 * np.mean(inps)
    out.update({f"rank-{k}-image": 100 * standard[k - 1] / n for k in (1, 5, 10, 20)})
    return out


def ddag_gallery_order(gids, gcams, cams, trial):
    """DDAG's process_gallery_sysu on index lists, in its order: random.seed(trial), identities
    ascending, cameras in the mode's order, random.choice of the folder's sorted files."""
    random.seed(trial)
    chosen = []
    for pid in sorted(set(gids.tolist())):
        for cam in cams:
            files = sorted(np.flatnonzero((gids == pid) & (gcams == cam)).tolist())
            if files:
                chosen.append(random.choice(files))
    return np.array(chosen)


@pytest.mark.parametrize("cams", [(1, 2, 4, 5), (1, 2)])
def test_seeded_protocol_equals_the_agw_rule_on_ddag_galleries(cams):
    from mv2d_bench.leaderboards.protocols.sysu import (
        SeededAllSearchSingleShot,
        SeededIndoorSearchSingleShot,
    )

    proto = SeededAllSearchSingleShot() if len(cams) == 4 else SeededIndoorSearchSingleShot()
    qf, qids, qcams, gf, gids, gcams = make_problem(13, g_per_cam=9)
    score = proto.score(query_feat=qf, query_ids=qids, query_cams=qcams, gallery_feat=gf,
                        gallery_ids=gids, gallery_cams=gcams)  # fmt: skip
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    for trial, ours in enumerate(score.per_trial):
        t = ddag_gallery_order(gids, gcams, cams, trial)
        # AGW scores -(q . g) of its features; the order is that of the cosine distance
        ref = agw_eval_sysu(1.0 - qn @ gn[t].T, qids, gids[t], qcams, gcams[t])
        assert ours.keys() == ref.keys()
        for k in ref:
            assert ours[k] == pytest.approx(ref[k], abs=1e-9), (trial, k)
    assert proto.gallery_info()["source"] == "seeds"
