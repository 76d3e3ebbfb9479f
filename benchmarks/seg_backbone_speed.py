"""The two 3D branches on the real SemanticKITTI scan, forward + backward, side by side.

The scan ``sequences/00/velodyne/000000.bin`` of ``../shared/data/semantickitti`` (124,668
points; 91,767 voxels of 0.05 m) through the paper-size 3D branch alone (encoder 32-64-128-256,
decoder 256-128-96-96, point-voxel features): ``spconv`` (the sparse voxel U-Net on spconv 2.x;
on the CPU every spconv call, forward and backward, runs on one thread: its kernels race with
more) against ``range`` (the pure-torch range-image U-Net, 64 x 2048). The loss is a linear
head's cross-entropy on random labels. Rounds alternate the branches; medians are reported.

    python benchmarks/seg_backbone_speed.py [--rounds 3] [--threads 1] [--scan FILE.bin]
        [--device cpu]

Prints one JSON object. (Paper-scale training is GPU work; this measures one step's cost.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SCAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "semantickitti"
SCAN = SCAN / "sequences" / "00" / "velodyne" / "000000.bin"


def build(name: str):
    if name == "spconv":
        from mv2d_bench.models.seg.sparse_unet import SparseUNet

        return SparseUNet(0.05)
    from mv2d_bench.models.seg.range_unet import RangeUNet

    return RangeUNet(64, 2048)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--scan", type=Path, default=SCAN)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    points = torch.from_numpy(np.fromfile(args.scan, np.float32).reshape(-1, 4)).to(device)
    batch = torch.zeros(len(points), dtype=torch.long, device=device)
    labels = torch.randint(0, 19, (len(points),), generator=torch.Generator().manual_seed(0))
    labels = labels.to(device)
    nets, heads = {}, {}
    for name in ("spconv", "range"):
        torch.manual_seed(0)
        nets[name] = build(name).to(device)
        heads[name] = torch.nn.Linear(nets[name].out_channels, 19).to(device)
    voxels = int(torch.unique(torch.floor(points[:, :3] / 0.05).long(), dim=0).shape[0])
    times = {n: {"forward": [], "backward": []} for n in nets}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for r in range(args.rounds + 1):  # round 0 warms up (index building, allocations)
        for name, net in nets.items():
            net.zero_grad(set_to_none=True)
            sync()
            t0 = time.perf_counter()
            loss = F.cross_entropy(heads[name](net(points, batch, None, 1)), labels)
            sync()
            t1 = time.perf_counter()
            loss.backward()
            sync()
            t2 = time.perf_counter()
            if r:
                times[name]["forward"].append(t1 - t0)
                times[name]["backward"].append(t2 - t1)
    med = {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}
    total = {n: m["forward"] + m["backward"] for n, m in med.items()}
    out = {
        "scan": str(args.scan),
        "points": len(points),
        "voxels_0.05m": voxels,
        "device": str(device),
        "threads": args.threads,
        "rounds": args.rounds,
        "seconds": {n: {k: round(v, 3) for k, v in m.items()} for n, m in med.items()},
        "forward_backward_seconds": {n: round(v, 3) for n, v in total.items()},
        "spconv_over_range": round(total["spconv"] / total["range"], 3),
        "parameters": {n: sum(p.numel() for p in net.parameters()) for n, net in nets.items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
