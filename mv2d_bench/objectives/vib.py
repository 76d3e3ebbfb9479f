"""``vib``: the variational information bottleneck (Alemi et al., 2017)."""

from __future__ import annotations

import torch
from torch import Tensor

from mv2d_bench.objectives.base import Objective, masked_mean
from mv2d_bench.views import ViewOutputs


def gaussian_kl_to_standard(mean: Tensor, std: Tensor) -> Tensor:
    """KL(N(mean, diag(std^2)) || N(0, I)) per item, summed over the last dimension (nats)."""
    mean, std = mean.float(), std.float()
    return 0.5 * (mean.pow(2) + std.pow(2) - 1.0 - 2.0 * torch.log(std)).sum(dim=-1)


class VIB(Objective):
    """Variational information bottleneck: bounds I(v_i; z_i) with a standard-normal prior.

    For every view the Gaussian bottleneck q(z_i | v_i) = N(rep_mean_i, rep_std_i^2) is pulled
    towards N(0, I)::

        vib = weight * beta * sum_i mean_items KL(N(mu_i, std_i^2) || N(0, I))

    the KL summed over the z dimensions, averaged over the valid items, summed over views.
    ``beta`` is the paper's trade-off coefficient (default 1e-3); ``weight`` is the overall
    multiplier every objective has (default 1), so the effective coefficient is weight * beta.
    """

    name = "vib"
    needs = frozenset({"rep_mean", "rep_std"})
    formula = "beta * sum_i KL(N(mu_i, std_i^2) || N(0, I))"

    def __init__(self, beta: float = 1e-3, weight: float = 1.0) -> None:
        super().__init__(weight=weight)
        if beta < 0:
            raise ValueError(f"beta must be >= 0; got {beta}")
        self.beta = float(beta)

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        kls = [
            masked_mean(gaussian_kl_to_standard(mu, std), outputs.view_mask(i))
            for i, (mu, std) in enumerate(zip(outputs.rep_mean, outputs.rep_std, strict=True))
        ]
        return {"vib": self.beta * torch.stack(kls).sum()}
