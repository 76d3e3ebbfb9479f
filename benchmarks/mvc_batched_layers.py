"""The batched per-view layers against per-view torch.nn modules (MVC, Hand shapes).

One process, side by side: the ``multiview-ib`` network of the paper preset (6 Hand views,
512-256 encoders, bottlenecks, heads, relation-lowrank fusion) as implemented (the per-view
Linear / BatchNorm / bottleneck / head layers of all views in one batched kernel each,
:mod:`mv2d_bench.models.perview`) and the same network built from one ``nn.Sequential`` /
``GaussianBottleneck`` / ``nn.Linear`` per view (as the model was before), with the same weights
(checked: equal outputs in evaluation mode). A step is forward, the task's cross-entropies on
v, z and the fused prediction, backward and a fused Adam step; rounds alternate the two and the
medians of the process CPU time per step are reported.

    python benchmarks/mvc_batched_layers.py [--rounds 40] [--threads 1]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from mv2d_bench.models.bottleneck import GaussianBottleneck
from mv2d_bench.models.multiview_ib import MultiViewIB
from mv2d_bench.models.mvc_fusion import fuse_views

DIMS = [240, 76, 216, 47, 64, 6]


class PerViewDropout(nn.Module):
    """The previous dropout: one uniform per element, per view."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


class PerViewNet(nn.Module):
    """``MultiViewIB`` built from per-view torch.nn modules, sharing the fusion module."""

    def __init__(self, model: MultiViewIB) -> None:
        super().__init__()
        enc = model.encoders
        firsts, norms = enc.first.to_modules(), [bn.to_modules() for bn in enc.norms]
        layers = [layer.to_modules() for layer in enc.layers]
        self.encoders = nn.ModuleList()
        for v in range(model.n_views):
            mods = [firsts[v], norms[0][v], nn.ReLU()]
            for k, layer in enumerate(layers):
                mods += [PerViewDropout(enc.drop.p), layer[v], norms[k + 1][v], nn.ReLU()]
            self.encoders.append(nn.Sequential(*mods))
        hid, out = model.bottlenecks.hidden.to_modules(), model.bottlenecks.out.to_modules()
        self.bottlenecks = nn.ModuleList()
        for v in range(model.n_views):
            b = GaussianBottleneck(hid[v].in_features, model.bottlenecks.z_dim, hid[v].out_features)
            b.net[0].load_state_dict(hid[v].state_dict())
            b.net[2].load_state_dict(out[v].state_dict())
            self.bottlenecks.append(b)
        self.obs_heads = nn.ModuleList(model.obs_heads.to_modules())
        self.rep_heads = nn.ModuleList(model.rep_heads.to_modules())
        self.fusion = model.fusion

    def forward(self, views):
        obs = [enc(x) for enc, x in zip(self.encoders, views, strict=True)]
        obs_logits = [h(v) for h, v in zip(self.obs_heads, obs, strict=True)]
        zs = [b(v) for b, v in zip(self.bottlenecks, obs, strict=True)]
        rep = [z for z, _, _ in zs]
        rep_logits = [h(z) for h, z in zip(self.rep_heads, rep, strict=True)]
        fused = fuse_views(self.fusion, torch.stack(rep, 1)).fused
        return torch.stack(obs_logits), torch.stack(rep_logits), fused


def batched_logits(model, views):
    out = model(views)
    return out.task_obs_logits, out.task_rep_logits, out.task_fused_logits


def make_step(forward, params, y):
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.9), fused=True)

    def step(views):
        obs, rep, fused = forward(views)
        n, b, c = obs.shape
        loss = (
            F.cross_entropy(obs.reshape(n * b, c), y.repeat(n))
            + F.cross_entropy(rep.reshape(n * b, c), y.repeat(n))
            + F.cross_entropy(fused, y)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    torch.manual_seed(0)
    model = MultiViewIB(DIMS, 10)
    ref = PerViewNet(model)
    views = [torch.randn(64, d) for d in DIMS]
    y = torch.randint(0, 10, (64,))
    model.eval(), ref.eval()
    with torch.no_grad():
        for a, b in zip(batched_logits(model, views), ref(views), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    model.train(), ref.train()
    steps = {
        "batched": make_step(lambda v: batched_logits(model, v), list(model.parameters()), y),
        "per_view_modules": make_step(ref, [*ref.parameters()], y),
    }
    for step in steps.values():
        for _ in range(3):
            step(views)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for r in range(args.rounds):
        for k in steps if r % 2 == 0 else reversed(list(steps)):
            t0 = time.process_time()
            for _ in range(args.steps):
                steps[k](views)
            times[k].append((time.process_time() - t0) / args.steps)
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "what": "multiview-ib forward + CE (v, z, fused) + backward + fused Adam, Hand "
                "shapes, batch 64, relation-lowrank fusion",
                "threads": args.threads,
                "rounds": args.rounds,
                "timer": "process CPU time per step, median",
                "cpu_ms_per_step": {k: round(v, 3) for k, v in ms.items()},
                "speedup": round(ms["per_view_modules"] / ms["batched"], 3),
                "outputs_equal_in_eval_mode": True,
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
