"""torch.compile against eager for the MVC training step (Hand shapes), side by side.

One process: for each objective, two Trainers on the real Handwritten data built from the same
seed (the paper preset, ``model.fusion`` as given): one eager, one whose step module (model,
task losses and objective, forward and backward) is wrapped in ``torch.compile`` (inductor,
default mode). The compiled one's first epoch (every batch shape once, so every recompilation)
is timed as compile cost; then rounds alternate the two over one epoch each and the medians
of the process CPU time per step are reported. ``net_s_per_run`` is what compiling would save
on one Hand run of the paper suite (160 epochs x the epoch's steps) after paying its compile
time; negative means it costs more than it saves. Graph breaks are counted from dynamo.
Inductor's on-disk caches are off unless ``--warm-cache`` (a first run compiles from cold; later
runs of a suite on the same machine would find the cache).

    python benchmarks/mvc_compile.py [--rounds 5] [--threads 1] [--warm-cache]
        [--objectives baseline,mv2d] [--fusion relation-lowrank]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts
from mvc_step_cost import build  # noqa: E402

EPOCHS = 160  # the paper preset's epochs: one Hand run


def epoch_cpu_ms(trainer, batches) -> float:
    c0 = time.process_time()
    for b in batches:
        trainer.train_step(b)
    return 1000 * (time.process_time() - c0) / len(batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="epochs per side after warm-up")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--objectives", default="baseline,mv2d")
    ap.add_argument("--fusion", default="relation-lowrank")
    ap.add_argument("--warm-cache", action="store_true", help="keep inductor's on-disk caches")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import torch._inductor.config as inductor_config

    inductor_config.force_disable_caches = not args.warm_cache
    from torch._dynamo.utils import counters

    load_before = os.getloadavg()
    out = {}
    for obj in [o for o in args.objectives.split(",") if o]:
        extra = [f"model.fusion={args.fusion}"]
        torch.manual_seed(0)
        eager, batches = build(obj, extra, "hand", args.threads)
        torch.manual_seed(0)
        compiled, _ = build(obj, extra, "hand", args.threads)
        compiled.step_module = torch.compile(compiled.step_module)
        counters.clear()
        w0 = time.perf_counter()
        for b in batches:
            compiled.train_step(b)
        first_epoch_s = time.perf_counter() - w0
        w0 = time.perf_counter()
        for b in batches:
            eager.train_step(b)
        eager_epoch_s = time.perf_counter() - w0
        times = {"eager": [], "compiled": []}
        for r in range(args.rounds):
            order = ("eager", "compiled") if r % 2 == 0 else ("compiled", "eager")
            for side in order:
                t = eager if side == "eager" else compiled
                times[side].append(epoch_cpu_ms(t, batches))
        ms = {k: statistics.median(v) for k, v in times.items()}
        compile_s = first_epoch_s - eager_epoch_s
        saved = (ms["eager"] - ms["compiled"]) / 1000 * EPOCHS * len(batches)
        out[obj] = {
            "cpu_ms_per_step": {k: round(v, 2) for k, v in ms.items()},
            "compiled_vs_eager": round(ms["compiled"] / ms["eager"], 3),
            "compile_s": round(compile_s, 1),
            "net_s_per_run": round(saved - compile_s, 1),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "graphs": int(counters["stats"]["unique_graphs"]),
        }
    print(
        json.dumps(
            {
                "benchmark": "hand",
                "fusion": args.fusion,
                "threads": args.threads,
                "rounds": args.rounds,
                "steps_per_epoch": len(batches),
                "inductor_caches": "warm" if args.warm_cache else "disabled",
                "torch": torch.__version__,
                "timer": "process CPU time per step, median over epochs (compile: wall time)",
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "per_objective": out,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
