"""The whole ``multiview-ib`` network with its batched per-view layers equals the same network
built from one torch.nn module per view (``benchmarks/mvc_batched_layers.py``'s reference, which
the speed comparison times): logits and input gradients in evaluation mode, and in training mode
(dropout 0) the encoder/head logits and the BatchNorm running statistics they update."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mv2d_bench.models.multiview_ib import MultiViewIB

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "mvc_batched_layers.py"


def _reference():
    spec = importlib.util.spec_from_file_location("mvc_batched_layers", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _loss(obs, rep, fused, y):
    n, b, c = obs.shape
    return (
        F.cross_entropy(obs.reshape(n * b, c), y.repeat(n))
        + F.cross_entropy(rep.reshape(n * b, c), y.repeat(n))
        + F.cross_entropy(fused, y)
    )


@pytest.mark.parametrize("fusion", ["relation-lowrank", "relation-full", "concat", "mean"])
def test_batched_network_equals_per_view_modules(fusion):
    ref_mod = _reference()
    torch.manual_seed(0)
    dims = ref_mod.DIMS
    model = MultiViewIB(dims, 10, hidden=(64, 32), z_dim=16, bottleneck_hidden=16,
                        classifier_hidden=32, fusion=fusion, dropout=0.0)  # fmt: skip
    ref = ref_mod.PerViewNet(model)
    y = torch.randint(0, 10, (24,))
    views = [torch.randn(24, d, dtype=torch.float32) for d in dims]
    # training mode: BatchNorm batch statistics and running-stat updates; the bottleneck's samples
    # differ between the two (separate noise draws), so only v's logits are compared here
    model.train(), ref.train()
    got = ref_mod.batched_logits(model, views)[0]
    want = ref(views)[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # each per-view Sequential is [Linear, BN, ReLU] + [Dropout, Linear, BN, ReLU] per layer
    for j, norm in enumerate(model.encoders.norms):
        for v in range(len(dims)):
            bn = ref.encoders[v][4 * j + 1]
            assert isinstance(bn, torch.nn.BatchNorm1d)
            s = slice(v * norm.channels, (v + 1) * norm.channels)
            assert norm.num_batches_tracked == bn.num_batches_tracked == 1
            torch.testing.assert_close(norm.running_mean[s], bn.running_mean)
            torch.testing.assert_close(norm.running_var[s], bn.running_var)
    # evaluation mode: every output, and the gradient of the task loss with respect to the inputs
    model.eval(), ref.eval()
    a = [x.clone().requires_grad_(True) for x in views]
    b = [x.clone().requires_grad_(True) for x in views]
    out_a, out_b = ref_mod.batched_logits(model, a), ref(b)
    for x, w in zip(out_a, out_b, strict=True):
        torch.testing.assert_close(x, w, rtol=1e-4, atol=1e-5)
    _loss(*out_a, y).backward()
    _loss(*out_b, y).backward()
    for ga, gb in zip(a, b, strict=True):
        torch.testing.assert_close(ga.grad, gb.grad, rtol=1e-4, atol=1e-6)
