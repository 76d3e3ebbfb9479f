"""MV2D's loss and leave-one-out fusion at 12 views vs 6 views (forward + backward).

One process, side by side: for n = 6 and n = 12 views (batch 64, z_dim 128, 10 classes, the
paper preset's relation fuse), time LeaveOneOutFusion(RelationFuse) producing the fused and the
n leave-one-out logits plus the MV2D objective (sufficiency + consistency), then backward.
Rounds interleave the two sizes; medians are reported. Goal (issue 3): <= 2.5 x.

    python benchmarks/mvc_loo_scaling.py [--rounds 200] [--threads 1]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mv2d_bench import objectives
from mv2d_bench.config import read_toml
from mv2d_bench.models.fusion import LeaveOneOutFusion
from mv2d_bench.models.mvnncor import RelationFuse
from mv2d_bench.views import ViewOutputs

GOAL = 2.5
PRESET = Path(__file__).resolve().parents[1] / "configs" / "paper" / "mvc.toml"


def make(n: int, batch: int, dim: int, classes: int, rank: int = 32, hidden: int = 128):
    torch.manual_seed(n)
    fusion = LeaveOneOutFusion(RelationFuse(n, dim, classes, rank=rank, hidden=hidden))
    objective = objectives.create("mv2d")
    reps = [torch.randn(batch, dim, requires_grad=True) for _ in range(n)]
    obs = [torch.randn(batch, classes, requires_grad=True) for _ in range(n)]
    rep_logits = [torch.randn(batch, classes, requires_grad=True) for _ in range(n)]
    target = torch.randint(0, classes, (batch,))

    def step() -> None:
        fused, loo = fusion(reps, loo=True)
        out = ViewOutputs(
            obs_logits=obs, rep_logits=rep_logits, fused_logits=fused, loo_logits=loo, target=target
        )
        loss = sum(objective(out).values())
        loss.backward()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dim", type=int, default=128, help="z_dim (the preset's is 128)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--rank", type=int, default=None, help="default: the paper preset's")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = read_toml(PRESET)["model"]
    rank = args.rank or model["relation_rank"]
    steps = {
        n: make(n, args.batch, args.dim, args.classes, rank, model["classifier_hidden"])
        for n in (6, 12)
    }
    for step in steps.values():
        for _ in range(10):
            step()
    times: dict[int, list[float]] = {6: [], 12: []}
    for r in range(args.rounds):
        for n in (6, 12) if r % 2 == 0 else (12, 6):
            t0 = time.perf_counter()
            steps[n]()
            times[n].append(time.perf_counter() - t0)
    ms = {n: 1000 * statistics.median(v) for n, v in times.items()}
    ratio = ms[12] / ms[6]
    print(
        json.dumps(
            {
                "what": "LeaveOneOutFusion(RelationFuse) + MV2D objective, forward and backward",
                "batch_size": args.batch,
                "dim": args.dim,
                "relation_rank": rank,
                "threads": args.threads,
                "rounds": args.rounds,
                "ms_median": {"6_views": round(ms[6], 3), "12_views": round(ms[12], 3)},
                "ratio_12_vs_6": round(ratio, 3),
                "goal": {"ratio_max": GOAL, "ok": ratio <= GOAL},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
