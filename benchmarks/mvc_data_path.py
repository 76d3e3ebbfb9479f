"""An epoch of Handwritten through the harness's data path vs pure tensor indexing.

One process, side by side, the same batches: the MVC task's ``train_batches`` (a seeded
permutation, one gather per view and epoch, contiguous slices, batch objects) against the
plain loop ``[x[idx] for x in views]`` over the same index batches on the same in-memory
tensors. The lower bound (contiguous slices of already ordered tensors, no gather) is reported
too. Rounds interleave the paths; medians are reported. Goal (issue 3): <= 1.2 x.

    python benchmarks/mvc_data_path.py [--rounds 200] [--threads 1]

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

PRESET = Path(__file__).resolve().parents[1] / "configs" / "paper" / "mvc.toml"
GOAL = 1.2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="hand")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(PRESET, overrides=[f"run.benchmark={args.benchmark}", "train.progress=false"])
    task = make_task(cfg)
    task.setup()
    views = [v.data for v in task.parts["train"][0]]
    labels = task.parts["train"][1]
    n, bs = len(labels), cfg.train.batch_size
    n_batches = task.num_train_batches(0)

    def harness(seed: int) -> int:
        count = 0
        for batch in task.train_batches(0, generator(seed, "data")):
            count += batch.target.shape[0]
        return count

    def pure(seed: int) -> int:
        perm = torch.randperm(n, generator=generator(seed, "data"))
        count = 0
        for b in range(n_batches):
            idx = perm[b * bs : (b + 1) * bs]
            xs, y = [x[idx] for x in views], labels[idx]
            count += y.shape[0] + 0 * len(xs)
        return count

    def contiguous(seed: int) -> int:
        count = 0
        for b in range(n_batches):
            s = slice(b * bs, (b + 1) * bs)
            xs, y = [x[s] for x in views], labels[s]
            count += y.shape[0] + 0 * len(xs)
        return count

    paths = {"harness": harness, "pure_index": pure, "contiguous_slices": contiguous}
    assert len({f(0) for f in paths.values()}) == 1  # the same number of items per epoch
    # the harness yields exactly the plain loop's batches
    perm = torch.randperm(n, generator=generator(0, "data"))
    for b, batch in enumerate(task.train_batches(0, generator(0, "data"))):
        idx = perm[b * bs : (b + 1) * bs]
        assert all(torch.equal(a, x[idx]) for a, x in zip(batch.views, views, strict=True))
    times: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    for r in range(args.rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            t0 = time.perf_counter()
            paths[name](r)
            times[name].append(time.perf_counter() - t0)
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
    ratio = ms["harness"] / ms["pure_index"]
    print(
        json.dumps(
            {
                "benchmark": args.benchmark,
                "train_items": n,
                "batch_size": bs,
                "batches_per_epoch": n_batches,
                "view_dims": task.view_dims,
                "epoch_ms_median": {k: round(v, 4) for k, v in ms.items()},
                "ratio_harness_vs_pure_index": round(ratio, 3),
                "ratio_harness_vs_contiguous": round(ms["harness"] / ms["contiguous_slices"], 3),
                "goal": {"ratio_max": GOAL, "ok": ratio <= GOAL},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
