"""The Gaussian bottleneck: the mean in evaluation, a reparameterised sample while training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mv2d_bench.models.bottleneck import GaussianBottleneck, softplus


def test_eval_returns_the_mean_and_a_positive_softplus_std():
    torch.manual_seed(0)
    b = GaussianBottleneck(16, 8, hidden=12, min_std=1e-3).eval()
    v = torch.randn(32, 16)
    z, mean, std = b(v)
    raw = b.net(v)
    assert torch.equal(z, mean)
    torch.testing.assert_close(mean, raw[:, :8])
    torch.testing.assert_close(std, F.softplus(raw[:, 8:]) + 1e-3)
    assert bool((std > 0).all())
    z2, _, _ = b(v)
    assert torch.equal(z, z2)  # no sampling at evaluation


def test_training_draws_mean_plus_std_times_standard_normal():
    torch.manual_seed(1)
    b = GaussianBottleneck(4, 3).train()
    v = torch.randn(5, 4)
    torch.manual_seed(123)
    z, mean, std = b(v)
    torch.manual_seed(123)
    eps = torch.randn(5, 3)
    torch.testing.assert_close(z, mean + std * eps)
    assert not torch.equal(z, mean)


def test_samples_have_the_stated_mean_and_std():
    torch.manual_seed(2)
    b = GaussianBottleneck(2, 2).train()
    v = torch.randn(1, 2).expand(200_000, 2)
    with torch.no_grad():
        z, mean, std = b(v)
    u = (z - mean) / std
    assert abs(float(u.mean())) < 0.01
    assert abs(float(u.std()) - 1.0) < 0.01


def test_gradients_reach_mean_and_std_through_the_sample():
    b = GaussianBottleneck(3, 2).train()
    v = torch.randn(8, 3)
    z, _, _ = b(v)
    z.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in b.parameters())


def test_fast_softplus_matches_torch_softplus_and_its_gradient():
    x = torch.linspace(-40, 40, 2001, dtype=torch.float32, requires_grad=True)
    ours = softplus(x)
    ref = F.softplus(x)
    torch.testing.assert_close(ours, ref, atol=1e-7, rtol=1e-6)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_ref,) = torch.autograd.grad(F.softplus(x).sum(), x)
    torch.testing.assert_close(g_ours, g_ref, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs", [{"in_dim": 0, "z_dim": 2}, {"in_dim": 2, "z_dim": 2, "min_std": -1}]
)
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError, match="GaussianBottleneck"):
        GaussianBottleneck(**kwargs)
