"""VIB against torch.distributions.kl_divergence(Normal, Normal)."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from mv2d_bench.objectives import create
from mv2d_bench.views import ViewOutputs


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("n", [1, 3])
def test_vib_matches_torch_distributions(n, masked):
    g = torch.Generator().manual_seed(n)
    means = [torch.randn(13, 6, generator=g) for _ in range(n)]
    stds = [torch.rand(13, 6, generator=g) * 2 + 0.05 for _ in range(n)]
    mask = (torch.rand(13, generator=g) < 0.5) | (torch.arange(13) == 0) if masked else None
    outputs = ViewOutputs(rep_mean=means, rep_std=stds, mask=mask)

    want = 0.0
    for mu, std in zip(means, stds, strict=True):
        per_item = kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).sum(-1)
        want += (per_item if mask is None else per_item[mask]).mean().item()
    got = create("vib", beta=0.25, weight=2.0)(outputs)
    assert list(got) == ["vib"]
    assert got["vib"].item() == pytest.approx(0.25 * 2.0 * want, rel=1e-5)
    assert create("vib")(outputs)["vib"].item() == pytest.approx(1e-3 * want, rel=1e-5)


def test_vib_is_zero_at_the_prior_and_pushes_mean_and_std():
    mu = torch.zeros(4, 3, requires_grad=True)
    std = torch.ones(4, 3, requires_grad=True)
    out = create("vib", beta=1.0)(ViewOutputs(rep_mean=[mu], rep_std=[std]))
    assert out["vib"].item() == pytest.approx(0.0, abs=1e-7)
    mu2 = torch.full((4, 3), 0.5, requires_grad=True)
    std2 = torch.full((4, 3), 2.0, requires_grad=True)
    out = create("vib", beta=1.0)(ViewOutputs(rep_mean=[mu2], rep_std=[std2]))
    out["vib"].backward()
    # d/dmu 0.5 mu^2 = mu, d/dstd 0.5 (std^2 - 2 log std) = std - 1/std; mean over 4 items
    torch.testing.assert_close(mu2.grad, torch.full((4, 3), 0.5 / 4))
    torch.testing.assert_close(std2.grad, torch.full((4, 3), (2.0 - 0.5) / 4))


def test_vib_rejects_negative_beta():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        create("vib", beta=-1.0)
