"""SYSU-MM01-sized ReID evaluation: the vectorised protocol vs AGW's evaluation as users run it,
and vs a per-query NumPy implementation of the official rule.

All sides run in this process on the same synthetic problem of SYSU-MM01's test size: 96
identities, 3,803 infrared queries (cams 3 and 6), a candidate gallery of 7,813 visible images
in 301 (identity, camera) groups of cams 1, 2, 4, 5, 2048-d float32 features, ten trial
galleries (single-shot: DDAG's seeded draw, 301 images each, ``single-shot-seeded@1``; with
``--shots 10`` the seeded multi-shot draw of the @1 id). Three measurements, side by side:

- ``agw_end_to_end`` (from features to the ten trials' metrics): ours, the protocol's ``score``
  (input checks, the ten galleries, unit features, ONE float64 matrix product of the queries
  with the union of the galleries, the ranking of all trials, metrics) vs AGW's evaluation as
  its ``test.py`` runs it (mangye16/Cross-Modal-Re-ID-baseline), written here from its
  definitions: per trial a float32 similarity matrix of the L2-normalised features
  (``np.matmul``), ``np.argsort`` of its negation, then ``eval_sysu``'s loop over the queries
  (drop cam-2 images for cam-3 queries, identities in ranked order via ``np.unique(...,
  return_index=True)``, AP from the cumulative matches divided by each position in a Python
  list comprehension, mINP). AGW's ``test.py`` copies the features into float64 arrays; the
  float32 product used here is the cheaper of the two, so the ratio is conservative.
  ``agw_max_abs_metric_diff``: ours (float64) against AGW (float32 products, non-stable
  argsort), percent points: small, not zero.
- ``end_to_end``: ours vs the straightforward per-query implementation of the official rule
  (float64 NumPy distance matrix per trial, stable argsort, the same loop written plainly):
  identical metrics.
- ``ranking`` (from the same ten precomputed float64 distance matrices): ours
  (``reid_eval.evaluate_trial_distances``) vs the per-query loop; the part the vectorisation
  replaces.

Both sides get the same CPU threads (``--threads``, default 1: torch's and NumPy's BLAS via
threadpoolctl; Python loops use one). Each side runs ``--repeats`` times, alternating; times are
medians; ``speedup`` = other median / ours median (wall clock), ``cpu_time_speedup`` the same in
process CPU time (steadier on a shared machine). ``--device cuda`` runs ours on the GPU
(float32 products with the float64 recount of near-ties; the metrics are those of the CPU).

    python benchmarks/reid_eval_speed.py [--shots 1|10] [--threads 1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from mv2d_bench.leaderboards.protocols.sysu import (
    EXCLUDE,
    AllSearchMultiShot,
    SeededAllSearchSingleShot,
)
from mv2d_bench.leaderboards.reid_eval import evaluate_trial_distances

N_IDS, N_QUERY, N_GALLERY, N_GROUPS, DIM = 96, 3803, 7813, 301, 2048
GOAL_AGW = 25.0
GOAL_NUMPY = 10.0


def problem(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, N_IDS + 1) * 5
    pairs = [(i, c) for i in ids for c in (1, 2, 4, 5)]
    keep = rng.choice(len(pairs), size=N_GROUPS, replace=False)
    groups = [pairs[k] for k in sorted(keep)]
    sizes = rng.multinomial(N_GALLERY - 10 * N_GROUPS, np.ones(N_GROUPS) / N_GROUPS) + 10
    gids = np.repeat([g[0] for g in groups], sizes)
    gcams = np.repeat([g[1] for g in groups], sizes)
    qids = rng.choice(ids, size=N_QUERY)
    qcams = rng.choice([3, 6], size=N_QUERY)
    centers = rng.normal(size=(ids.max() + 1, DIM)).astype(np.float32)
    noise = 5.0  # hard enough that rank-1 is far from 100
    gf = centers[gids] + noise * rng.normal(size=(gids.size, DIM)).astype(np.float32)
    qf = centers[qids] + noise * rng.normal(size=(N_QUERY, DIM)).astype(np.float32)
    return {
        "query_feat": qf, "query_ids": qids, "query_cams": qcams,
        "gallery_feat": gf, "gallery_ids": gids, "gallery_cams": gcams,
    }  # fmt: skip


def distances(qf: np.ndarray, gf: np.ndarray) -> np.ndarray:
    """Cosine distances of one trial, as a straightforward implementation computes them."""
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    return 1.0 - qn @ gn.T


def reference_trial(dist, qids, qcams, gids, gcams) -> dict[str, float]:
    """Per-query NumPy evaluation of one gallery (official definitions, percent)."""
    counter = np.zeros(dist.shape[1])
    image_counter = np.zeros(dist.shape[1])
    valid, ap_sum, inp_sum = 0, 0.0, 0.0
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        ids_i = gids[order]
        if qcams[i] == 3:
            ids_i = ids_i[gcams[order] != 2]
        hits = np.flatnonzero(ids_i == qids[i]) + 1
        if hits.size == 0:
            continue
        valid += 1
        _, first = np.unique(ids_i, return_index=True)
        listed = ids_i[np.sort(first)]
        counter[: listed.size] += listed == qids[i]
        image_counter[hits[0] - 1] += 1
        ap_sum += np.mean(np.arange(1, hits.size + 1) / hits)
        inp_sum += hits.size / hits[-1]
    cmc, image_cmc = np.cumsum(counter) / valid, np.cumsum(image_counter) / valid
    out = {f"rank-{k}": 100 * cmc[k - 1] for k in (1, 5, 10, 20)}
    out["mAP"], out["mINP"] = 100 * ap_sum / valid, 100 * inp_sum / valid
    out.update({f"rank-{k}-image": 100 * image_cmc[k - 1] for k in (1, 5, 10, 20)})
    return out


def agw_eval_sysu(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=20) -> dict:
    """AGW's ``eval_sysu`` as published (written from its definitions): one argsort of the
    whole matrix, then a Python loop over the queries."""
    indices = np.argsort(distmat, axis=1)
    pred_label = g_pids[indices]
    matches = (pred_label == q_pids[:, None]).astype(np.int32)
    distinct_cmc, standard_cmc, aps, inps = [], [], [], []
    n_valid = 0.0
    for q in range(distmat.shape[0]):
        keep = ~((q_camids[q] == 3) & (g_camids[indices[q]] == 2))
        ranked = pred_label[q][keep]
        first = np.unique(ranked, return_index=True)[1]
        identities = [ranked[j] for j in sorted(first)]
        distinct_cmc.append((np.asarray(identities) == q_pids[q]).astype(np.int32).cumsum()[
            :max_rank
        ])  # fmt: skip
        hit = matches[q][keep]
        if not hit.any():
            continue
        cum = hit.cumsum()
        last = np.max(np.where(hit == 1))
        inps.append(cum[last] / (last + 1.0))
        standard_cmc.append(np.minimum(cum, 1)[:max_rank])
        n_valid += 1
        precision = [c / (pos + 1.0) for pos, c in enumerate(cum)]
        aps.append((np.asarray(precision) * hit).sum() / hit.sum())
    cmc = np.asarray(distinct_cmc).astype(np.float32).sum(0) / n_valid
    image = np.asarray(standard_cmc).astype(np.float32).sum(0) / n_valid
    out = {f"rank-{k}": 100 * float(cmc[k - 1]) for k in (1, 5, 10, 20)}
    out["mAP"], out["mINP"] = 100 * float(np.mean(aps)), 100 * float(np.mean(inps))
    out.update({f"rank-{k}-image": 100 * float(image[k - 1]) for k in (1, 5, 10, 20)})
    return out


def timed(runs: dict[str, callable], repeats: int, sync) -> dict[str, dict]:
    """Run every side ``repeats`` times, alternating; per side: last result, wall and CPU."""
    out: dict[str, dict] = {name: {"wall": [], "cpu": []} for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            out[name]["out"] = fn()
            sync()
            out[name]["wall"].append(time.perf_counter() - t0)
            out[name]["cpu"].append(time.process_time() - c0)
    return out


def max_diff(a: list[dict], b: list[dict]) -> float:
    return max(abs(x[k] - y[k]) for x, y in zip(a, b, strict=True) for k in y)


def side(ours: dict, other: dict, diff: float, agree: float) -> dict:
    med = statistics.median
    return {
        "ours_seconds": round(med(ours["wall"]), 4),
        "other_seconds": round(med(other["wall"]), 4),
        "speedup": round(med(other["wall"]) / med(ours["wall"]), 2),
        "ours_cpu_seconds": round(med(ours["cpu"]), 4),
        "other_cpu_seconds": round(med(other["cpu"]), 4),
        "cpu_time_speedup": round(med(other["cpu"]) / med(ours["cpu"]), 2),
        "ours_seconds_all": [round(t, 4) for t in ours["wall"]],
        "other_seconds_all": [round(t, 4) for t in other["wall"]],
        "max_abs_metric_diff": float(diff),
        "metrics_agree": bool(diff <= agree),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Prints one JSON object (see the module "
        "docstring for what each side computes)."
    )  # fmt: skip
    parser.add_argument(
        "--shots", type=int, choices=(1, 10), default=1, help="gallery images per identity "
        "and camera: 1 (single-shot, the default) or 10 (multi-shot)"
    )  # fmt: skip
    parser.add_argument(
        "--device", default="cpu", help="torch device of ours: cpu (default) or cuda[:N] "
        "(float32 products with the float64 recount of near-ties)"
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (median kept)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads of EVERY side: torch's and NumPy's BLAS (default 1: steady on a "
        "shared machine; 0: leave the libraries' defaults)",
    )
    parser.add_argument(
        "--skip-agw", action="store_true", help="leave out the AGW side (about 20 s per run)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"reid_eval_speed: error: --device {args.device}: torch sees no CUDA device",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.repeats < 1:
        print("reid_eval_speed: error: --repeats: expected >= 1", file=sys.stderr)
        return 2
    limits = threadpool_limits(args.threads) if args.threads else None
    if args.threads:
        torch.set_num_threads(args.threads)

    data = problem()
    cls = SeededAllSearchSingleShot if args.shots == 1 else AllSearchMultiShot
    proto = cls(device=args.device)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    qids, qcams = data["query_ids"], data["query_cams"]
    gids, gcams = data["gallery_ids"], data["gallery_cams"]
    trials = proto.trial_galleries(gids, gcams)
    qf64 = data["query_feat"].astype(np.float64)

    def reference_end_to_end():
        return [
            reference_trial(distances(qf64, data["gallery_feat"][t].astype(np.float64)), qids,
                            qcams, gids[t], gcams[t])
            for t in proto.trial_galleries(gids, gcams)
        ]  # fmt: skip

    def agw_end_to_end():
        # AGW's features come L2-normalised out of its network; it ranks -(q . g)
        qn = data["query_feat"] / np.linalg.norm(data["query_feat"], axis=1, keepdims=True)
        gn = data["gallery_feat"] / np.linalg.norm(data["gallery_feat"], axis=1, keepdims=True)
        out = []
        for t in proto.trial_galleries(gids, gcams):
            sim = np.matmul(qn.astype(np.float32), gn[t].astype(np.float32).T)
            out.append(agw_eval_sysu(-sim, qids, gids[t], qcams, gcams[t]))
        return out

    proto.score(**data)  # warm-up (imports, allocator, kernels)
    if args.threads:  # again: libraries the warm-up imported (scipy's BLAS ...) load unlimited
        limits = threadpool_limits(args.threads)
    sides = {"ours": lambda: proto.score(**data), "reference": reference_end_to_end}
    if not args.skip_agw:
        sides["agw"] = agw_end_to_end
    e = timed(sides, args.repeats, sync)

    dists = [distances(qf64, data["gallery_feat"][t].astype(np.float64)) for t in trials]

    def ours_ranking():
        res = evaluate_trial_distances(
            dists, qids, qcams, [gids[t] for t in trials], [gcams[t] for t in trials],
            exclude=EXCLUDE, device=args.device,
        )  # fmt: skip
        return [r.metrics() for r in res]

    def reference_ranking():
        return [
            reference_trial(d, qids, qcams, gids[t], gcams[t])
            for d, t in zip(dists, trials, strict=True)
        ]

    r = timed({"ours": ours_ranking, "reference": reference_ranking}, args.repeats, sync)

    ours_trials = e["ours"]["out"].per_trial
    report = {
        "benchmark": "reid_eval_speed",
        "protocol": proto.id,
        "queries": N_QUERY,
        "candidate_gallery": N_GALLERY,
        "trial_gallery_sizes": sorted({int(t.size) for t in trials}),
        "trials": len(trials),
        "union_of_trial_galleries": int(np.unique(np.concatenate(trials)).size),
        "dim": DIM,
        "device": args.device,
        "ours_products": "float32 + float64 recount of near-ties" if cuda else "float64",
        "torch_threads": torch.get_num_threads(),
        "numpy_blas_threads": sorted(
            {f"{i['internal_api']}:{i['num_threads']}" for i in threadpool_info()}
        ),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "repeats": args.repeats,
    }
    if not args.skip_agw:
        agw = side(e["ours"], e["agw"], max_diff(ours_trials, e["agw"]["out"]), 1e-3)
        agw["goal_speedup"] = GOAL_AGW
        agw["goal_met"] = bool(agw["cpu_time_speedup"] >= GOAL_AGW and agw["speedup"] >= GOAL_AGW)
        report["agw_end_to_end"] = agw
    report["end_to_end"] = side(
        e["ours"], e["reference"], max_diff(ours_trials, e["reference"]["out"]), 1e-9
    )
    report["end_to_end"]["goal_speedup"] = GOAL_NUMPY
    ranking_diff = max_diff(r["ours"]["out"], r["reference"]["out"])
    report["ranking"] = side(r["ours"], r["reference"], ranking_diff, 1e-9)
    report["metrics"] = {k: round(v, 4) for k, v in e["ours"]["out"].metrics.items()}
    report["python"] = platform.python_version()
    report["torch"] = torch.__version__
    if cuda:
        report["cuda_device"] = torch.cuda.get_device_name(torch.device(args.device))
    print(json.dumps(report, indent=2))
    if limits is not None:
        limits.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
