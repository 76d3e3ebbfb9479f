"""Training-step cost of every objective relative to the bottleneck alone (MVC, Hand shapes).

One process, side by side: a Trainer per setting on the real Handwritten data (6 views,
240/76/216/47/64/6 features, batch 64, the paper preset), each with one epoch of batches
prepared in advance. Rounds interleave the settings (rotating their order), timing a block of
steps each, so machine load affects all settings alike; the median per-step time is reported.
A step is the harness's own ``Trainer.train_step``: forward, task loss, objective, backward,
Adam. Goal (issue 3): MV2D <= 1.10 x the bottleneck alone (the paper: 1.09 x; CIB 1.26 x).

    python benchmarks/mvc_step_cost.py [--rounds 30] [--steps 5] [--threads 1]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mv2d_bench.config import load_config
from mv2d_bench.harness.runner import make_task
from mv2d_bench.harness.seeding import generator
from mv2d_bench.harness.trainer import Trainer

PRESET = Path(__file__).resolve().parents[1] / "configs" / "paper" / "mvc.toml"
SETTINGS = {
    "bottleneck": ("baseline", []),
    "no-bottleneck": ("baseline", ["model.bottleneck=false"]),
    "vib": ("vib", []),
    "cib": ("cib", []),
    "vsd": ("vsd", []),
    "vcd": ("vcd", []),
    "vmd": ("vmd", []),
    "mv2d": ("mv2d", []),
}
GOAL = 1.10


def build(objective: str, extra: list[str], benchmark: str, threads: int) -> tuple[Trainer, list]:
    cfg = load_config(
        PRESET,
        overrides=[
            f"run.benchmark={benchmark}",
            f"run.objective={objective}",
            f"run.threads={threads}",
            "train.progress=false",
            *extra,
        ],
    )
    trainer = Trainer(make_task(cfg), cfg)
    trainer.build()
    batches = list(trainer.task.train_batches(0, generator(0, "bench")))
    trainer.model.train()
    trainer.objective.train()
    return trainer, batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="hand")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--steps", type=int, default=5, help="steps per timed block")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = {
        name: build(obj, extra, args.benchmark, args.threads)
        for name, (obj, extra) in SETTINGS.items()
    }
    names = list(runs)
    for trainer, batches in runs.values():  # warm-up
        for b in batches[:3]:
            trainer.train_step(b)
    times: dict[str, list[float]] = {n: [] for n in names}
    cursor = dict.fromkeys(names, 0)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            trainer, batches = runs[name]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step(batches[cursor[name] % len(batches)])
                cursor[name] += 1
            times[name].append((time.perf_counter() - t0) / args.steps)
    ms = {n: 1000 * statistics.median(v) for n, v in times.items()}
    base = ms["bottleneck"]
    ratios = {n: round(v / base, 3) for n, v in ms.items()}
    n_views = runs["mv2d"][0].task.n_views
    batch = runs["mv2d"][1][0].target.shape[0]
    print(
        json.dumps(
            {
                "benchmark": args.benchmark,
                "views": n_views,
                "batch_size": batch,
                "threads": args.threads,
                "rounds": args.rounds,
                "steps_per_block": args.steps,
                "step_ms_median": {n: round(v, 3) for n, v in ms.items()},
                "ratio_vs_bottleneck": ratios,
                "goal": {
                    "mv2d_ratio_max": GOAL,
                    "mv2d_ratio": ratios["mv2d"],
                    "ok": ratios["mv2d"] <= GOAL,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
