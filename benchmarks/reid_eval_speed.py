"""SYSU-MM01-sized ReID evaluation: the vectorised protocol vs a per-query NumPy loop.

Both run in this process on the same synthetic problem of SYSU-MM01's test size: 96 identities,
3,803 infrared queries (cams 3 and 6), a candidate gallery of 7,813 visible images in 301
(identity, camera) groups of cams 1, 2, 4, 5, 2048-d float32 features, ten trial galleries drawn
with the protocol's seeds. Two measurements, each side by side:

- ``end_to_end`` (from features): "ours" is ``AllSearchSingleShot().score`` (or the
  multi-shot protocol): drawing the galleries, distances, ranking and metrics. "reference" is
  the straightforward implementation of the official evaluation: for every trial a NumPy
  distance matrix, then a Python loop over the queries (stable argsort, cam-2 removal for cam-3
  queries, stable unique for the CMC, AP and INP).
- ``ranking`` (from the same ten precomputed distance matrices): ours
  (``reid_eval.evaluate_distances``) vs the same per-query loop; this isolates the part the
  vectorisation replaces, since both sides pay the same matrix product in ``end_to_end``.

Prints one JSON object; ``speedup`` is reference wall seconds / ours wall seconds (best of
``--repeats`` for ours), ``cpu_time_speedup`` the same with process CPU time (steadier on a
shared machine; with several threads CPU time adds the threads up), and
``max_abs_metric_diff`` shows both computed the same numbers.

    python benchmarks/reid_eval_speed.py [--shots 1|10] [--device cpu|cuda] [--dtype float64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from mv2d_bench.leaderboards.protocols.sysu import EXCLUDE, AllSearchMultiShot, AllSearchSingleShot
from mv2d_bench.leaderboards.reid_eval import evaluate_distances

N_IDS, N_QUERY, N_GALLERY, N_GROUPS, DIM = 96, 3803, 7813, 301, 2048


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
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    return 1.0 - qn @ gn.T


def reference_trial(dist, qids, qcams, gids, gcams) -> dict[str, float]:
    """Per-query NumPy evaluation of one gallery (official definitions, percent)."""
    counter = np.zeros(dist.shape[1])
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
        ap_sum += np.mean(np.arange(1, hits.size + 1) / hits)
        inp_sum += hits.size / hits[-1]
    cmc = np.cumsum(counter) / valid
    return {
        "rank-1": 100 * cmc[0], "rank-10": 100 * cmc[9], "rank-20": 100 * cmc[19],
        "mAP": 100 * ap_sum / valid, "mINP": 100 * inp_sum / valid,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=int, choices=(1, 10), default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (best is kept)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: steady on a shared machine; 0: torch default)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = problem()
    cls = AllSearchSingleShot if args.shots == 1 else AllSearchMultiShot
    proto = cls(device=args.device, dtype=getattr(torch, args.dtype))

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def timed(fn):
        times, cpu, out = [], [], None
        for _ in range(args.repeats):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            sync()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return out, times, cpu

    qf64 = data["query_feat"].astype(np.float64)
    qids, qcams = data["query_ids"], data["query_cams"]
    gids, gcams = data["gallery_ids"], data["gallery_cams"]

    # end to end, from features
    score, ours_times, ours_cpu = timed(lambda: proto.score(**data))
    t0, c0 = time.perf_counter(), time.process_time()
    trials = proto.trial_galleries(gids, gcams)
    ref_trials = [
        reference_trial(distances(qf64, data["gallery_feat"][t].astype(np.float64)), qids,
                        qcams, gids[t], gcams[t])
        for t in trials
    ]  # fmt: skip
    ref_seconds, ref_cpu = time.perf_counter() - t0, time.process_time() - c0

    # ranking only, from the same precomputed distance matrices
    dists = [distances(qf64, data["gallery_feat"][t].astype(np.float64)) for t in trials]

    def ours_ranking():
        return [
            evaluate_distances(d, qids, qcams, gids[t], gcams[t], exclude=EXCLUDE,
                               device=args.device).metrics()
            for d, t in zip(dists, trials, strict=True)
        ]  # fmt: skip

    rank_ours, rank_times, rank_cpu = timed(ours_ranking)
    t0, c0 = time.perf_counter(), time.process_time()
    rank_ref = [
        reference_trial(d, qids, qcams, gids[t], gcams[t])
        for d, t in zip(dists, trials, strict=True)
    ]
    rank_ref_seconds, rank_ref_cpu = time.perf_counter() - t0, time.process_time() - c0

    def diff(a, b):
        return max(abs(x[k] - y[k]) for x, y in zip(a, b, strict=True) for k in y)

    def side(ours_t, ours_c, ref_s, ref_c, d):
        best = int(np.argmin(ours_t))
        return {
            "ours_seconds": round(ours_t[best], 4),
            "ours_seconds_all_repeats": [round(t, 4) for t in ours_t],
            "reference_seconds": round(ref_s, 4),
            "speedup": round(ref_s / ours_t[best], 2),
            "ours_cpu_seconds": round(min(ours_c), 4),
            "reference_cpu_seconds": round(ref_c, 4),
            "cpu_time_speedup": round(ref_c / min(ours_c), 2),
            "max_abs_metric_diff": d,
        }

    print(
        json.dumps(
            {
                "benchmark": "reid_eval_speed",
                "protocol": proto.id,
                "queries": N_QUERY,
                "candidate_gallery": N_GALLERY,
                "trial_gallery_sizes": sorted({int(t.size) for t in trials}),
                "trials": len(trials),
                "dim": DIM,
                "device": args.device,
                "dtype": args.dtype,
                "torch_threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(),
                "goal_speedup": 10.0,
                "end_to_end": side(
                    ours_times, ours_cpu, ref_seconds, ref_cpu, diff(score.per_trial, ref_trials)
                ),
                "ranking": side(
                    rank_times, rank_cpu, rank_ref_seconds, rank_ref_cpu, diff(rank_ours, rank_ref)
                ),
                "metrics": {k: round(v, 4) for k, v in score.metrics.items()},
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
