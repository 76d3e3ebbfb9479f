"""Training-step cost per objective and per fusion (MVC, Hand shapes), side by side.

One process: a Trainer per (fusion, setting) on the real Handwritten data (6 views,
240/76/216/47/64/6 features, batch 64, the paper preset, ``model.fusion`` varied), each with one
epoch of batches prepared in advance. Rounds interleave every case (rotating their order) and
time a block of steps each, so machine load affects all cases alike; the medians of the
process CPU time per step (and of the wall time) are reported. A step is the harness's own
``Trainer.train_step``: forward, task loss, objective, backward, optimiser step.

Goals (issue 10): for every fusion MV2D <= 1.10 x the bottleneck alone (same fusion);
relation-full <= 2 x relation-lowrank (bottleneck alone, 6 views, batch 64).

    python benchmarks/mvc_step_cost.py [--rounds 20] [--steps 3] [--threads 1]
        [--fusions relation-lowrank,relation-full,concat,mean] [--objectives baseline,mv2d,...]

Prints one JSON object (with the machine's load averages before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from mv2d_bench.config import load_config
from mv2d_bench.harness.machine import machine_info
from mv2d_bench.harness.runner import make_task
from mv2d_bench.harness.seeding import generator
from mv2d_bench.harness.trainer import Trainer

PRESET = Path(__file__).resolve().parents[1] / "configs" / "paper" / "mvc.toml"
OBJECTIVES = {
    "bottleneck": ("baseline", []),
    "no-bottleneck": ("baseline", ["model.bottleneck=false"]),
    "vib": ("vib", []),
    "cib": ("cib", []),
    "vsd": ("vsd", []),
    "vcd": ("vcd", []),
    "vmd": ("vmd", []),
    "mv2d": ("mv2d", []),
}
FUSIONS = ("relation-lowrank", "relation-full", "concat", "mean")
MV2D_GOAL = 1.10
FULL_GOAL = 2.0


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
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed block")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fusions", default=",".join(FUSIONS))
    ap.add_argument("--objectives", default="bottleneck,mv2d")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    fusions = [f for f in args.fusions.split(",") if f]
    names = [o for o in args.objectives.split(",") if o]
    if "bottleneck" not in names:
        names.insert(0, "bottleneck")
    cases = {}
    for fusion in fusions:
        for name in names:
            obj, extra = OBJECTIVES[name]
            cases[(fusion, name)] = build(
                obj, [*extra, f"model.fusion={fusion}"], args.benchmark, args.threads
            )
    for trainer, batches in cases.values():  # warm-up
        for b in batches[:2]:
            trainer.train_step(b)
    keys = list(cases)
    cpu: dict[tuple, list[float]] = {k: [] for k in keys}
    wall: dict[tuple, list[float]] = {k: [] for k in keys}
    cursor = dict.fromkeys(keys, 0)
    for r in range(args.rounds):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            trainer, batches = cases[k]
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step(batches[cursor[k] % len(batches)])
                cursor[k] += 1
            cpu[k].append((time.process_time() - c0) / args.steps)
            wall[k].append((time.perf_counter() - w0) / args.steps)
    cpu_ms = {k: 1000 * statistics.median(v) for k, v in cpu.items()}
    wall_ms = {k: 1000 * statistics.median(v) for k, v in wall.items()}
    per_fusion = {}
    for fusion in fusions:
        base = cpu_ms[(fusion, "bottleneck")]
        per_fusion[fusion] = {
            "cpu_ms_per_step": {n: round(cpu_ms[(fusion, n)], 2) for n in names},
            "wall_ms_per_step": {n: round(wall_ms[(fusion, n)], 2) for n in names},
            "ratio_vs_bottleneck": {n: round(cpu_ms[(fusion, n)] / base, 3) for n in names},
        }
    goals = {}
    if "mv2d" in names:
        goals["mv2d_vs_bottleneck_max"] = MV2D_GOAL
        goals["mv2d_vs_bottleneck"] = {
            f: per_fusion[f]["ratio_vs_bottleneck"]["mv2d"] for f in fusions
        }
        goals["mv2d_ok"] = all(v <= MV2D_GOAL for v in goals["mv2d_vs_bottleneck"].values())
    if {"relation-full", "relation-lowrank"} <= set(fusions):
        ratio = cpu_ms[("relation-full", "bottleneck")] / cpu_ms[("relation-lowrank", "bottleneck")]
        goals.update(
            relation_full_vs_lowrank=round(ratio, 3),
            relation_full_vs_lowrank_max=FULL_GOAL,
            relation_full_ok=ratio <= FULL_GOAL,
        )
    trainer = next(iter(cases.values()))[0]
    print(
        json.dumps(
            {
                "benchmark": args.benchmark,
                "views": trainer.task.n_views,
                "batch_size": trainer.config.train.batch_size,
                "threads": args.threads,
                "rounds": args.rounds,
                "steps_per_block": args.steps,
                "timer": "process CPU time per step, median over rounds (wall time beside it)",
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "machine": machine_info("cpu"),
                "per_fusion": per_fusion,
                "goals": goals,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
