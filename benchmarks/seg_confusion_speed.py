"""Confusion-matrix accumulation on 10 million points: ours vs nuscenes-devkit's
``ConfusionMatrix.update``, side by side in one process.

Both sides get the same uint8 NumPy arrays (ground truth 0..16, predictions 1..16, as the
devkit's LidarSegEval feeds them) and must produce the same 17 x 17 matrix (checked). Ours is
``protocols.get("nuscenes-lidarseg/val@1").metric().update(pred=..., label=...)``: the NumPy
arrays become tensors, range checks with ``aminmax``, one ``bincount`` over an int16 key. The
devkit spends most of its time in two Python ``all()`` checks over the arrays. Also timed: a
plain torch int64 ``bincount`` of ``17 * gt + pred`` (what the metric would cost with int64
keys and no checks). Rounds alternate the sides; medians are reported. Goal (issue 9): >= 5 x.

    python benchmarks/seg_confusion_speed.py [--points 10000000] [--rounds 7] [--threads 1]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

GOAL = 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from nuscenes.eval.lidarseg.utils import ConfusionMatrix

    from mv2d_bench.leaderboards import protocols

    proto = protocols.get("nuscenes-lidarseg/val@1")
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 17, args.points).astype(np.uint8)
    pred = rng.integers(1, 17, args.points).astype(np.uint8)

    def ours():
        metric = proto.metric()
        metric.update(pred=pred, label=gt)
        return metric.confmat.numpy()

    def devkit():
        cm = ConfusionMatrix(17, ignore_idx=0)
        cm.update(gt, pred)
        return cm.global_cm

    def int64_bincount():
        key = torch.from_numpy(gt).long() * 17 + torch.from_numpy(pred).long()
        return torch.bincount(key, minlength=289).view(17, 17)

    assert np.array_equal(ours(), devkit()), "the two confusion matrices differ"
    times = {"ours": [], "devkit": [], "int64_bincount": []}
    for _ in range(args.rounds):
        for name, fn in (("ours", ours), ("devkit", devkit), ("int64_bincount", int64_bincount)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "points": args.points,
        "rounds": args.rounds,
        "threads": args.threads,
        "seconds": {k: round(v, 4) for k, v in med.items()},
        "speedup_vs_devkit": round(med["devkit"] / med["ours"], 2),
        "int64_bincount_vs_devkit": round(med["devkit"] / med["int64_bincount"], 2),
        "same_matrix": True,
        "goal": GOAL,
        "met": med["devkit"] / med["ours"] >= GOAL,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
