"""One process of the distributed metric test (started by torchrun from test_metric_sync.py).

Arguments: a folder holding ``<n>.npz`` (one protocol's whole split) and ``plan.json`` (protocol
ids and batch sizes per item group). Each process joins the gloo group, feeds the batches ``b``
with ``b % world_size == rank`` (the evaluation contract) with their dataset indices, computes
the synced score and writes ``result-<rank>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch.distributed as dist

from mv2d_bench.harness.distributed import world
from mv2d_bench.leaderboards.protocols import get


def main(folder: Path) -> None:
    dist.init_process_group("gloo")
    w = world()
    plan = json.loads((folder / "plan.json").read_text())
    out = {}
    for n, item in enumerate(plan):
        proto = get(item["protocol"])
        with np.load(folder / f"{n}.npz") as data:
            arrays = {k: data[k] for k in data.files}
        metric = proto.metric()
        batches = []
        for group, size in item["batch"].items():
            keys = [k for k in arrays if not group or k.startswith(f"{group}_")]
            total = len(arrays[keys[0]])
            for start in range(0, total, size):
                rows = np.arange(start, min(start + size, total))
                batch = {k: arrays[k][rows] for k in keys}
                if group:
                    batch[proto.dataset_index_keys[group]] = rows
                batches.append(batch)
        mine = [batches[b] for b in w.shard(len(batches))]
        for batch in mine:
            metric.update(**batch)
        score = metric.compute()
        out[str(n)] = {
            "metrics": score.metrics,
            "per_trial": score.per_trial,
            "batches": len(mine),
        }
    (folder / f"result-{w.rank}.json").write_text(json.dumps({"world": w.size, "scores": out}))
    # every rank done with its last collective before any tears the group down (one CI run
    # under heavy load saw a rank abort in gloo at teardown: "terminate called without an
    # active exception")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
