"""MV2D's loss and leave-one-out fusion at 12 views vs 6 views (forward + backward).

One process, side by side: for n = 6 and n = 12 views (batch 64, z_dim 128, 10 classes, the
paper preset's fusion, ``--fusion`` to pick another), time the fusion producing the fused and
the n leave-one-out logits in one call (frozen parameters for the leave-one-out rows, the
default gradient path) plus the MV2D objective (sufficiency + consistency), then backward.
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
from mv2d_bench.models.mvc_fusion import build_fusion, fuse_views
from mv2d_bench.views import ViewOutputs

GOAL = 2.5
PRESET = Path(__file__).resolve().parents[1] / "configs" / "paper" / "mvc.toml"


def make(n: int, batch: int, dim: int, classes: int, rank: int, hidden: int, fusion_name: str):
    torch.manual_seed(n)
    fusion = build_fusion(fusion_name, n, dim, classes, hidden=hidden, dropout=0.5, rank=rank)
    objective = objectives.create("mv2d")
    reps = torch.randn(batch, n, dim, requires_grad=True)
    obs = [torch.randn(batch, classes, requires_grad=True) for _ in range(n)]
    rep_logits = [torch.randn(batch, classes, requires_grad=True) for _ in range(n)]
    target = torch.randint(0, classes, (batch,))

    def step() -> None:
        res = fuse_views(fusion, reps, loo=True, split=True)
        out = ViewOutputs(
            obs_logits=obs,
            rep_logits=rep_logits,
            fused_logits=res.fused_for_objective,
            loo_logits=res.loo,
            target=target,
        )
        loss = sum(objective(out).values()) + torch.nn.functional.cross_entropy(res.fused, target)
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
    ap.add_argument("--fusion", default=None, help="default: the paper preset's")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = read_toml(PRESET)["model"]
    rank = args.rank or model["relation_rank"]
    fusion = args.fusion or model["fusion"]
    steps = {
        n: make(n, args.batch, args.dim, args.classes, rank, model["classifier_hidden"], fusion)
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
                "what": f"{fusion} fused + leave-one-out rows + MV2D objective, fwd + bwd",
                "fusion": fusion,
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
