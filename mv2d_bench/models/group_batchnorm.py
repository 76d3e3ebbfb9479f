"""One BatchNorm1d applied to several groups of a batch at once, as repeated calls would be.

MvNNcor applies one ``BatchNorm1d`` module many times per forward pass: its relation module
normalises every view pair's relation separately (n^2 calls), its shared classifier every
view's input separately (n calls). Each call normalises with the statistics of its own batch and
moves the running statistics once. :class:`GroupBatchNorm` does all calls in one pass:

``forward(x (G, B, C), update=None)`` normalises each group g with the mean and (biased)
variance over its B items (training) or with the running statistics (evaluation), then applies
the one shared affine ``weight``/``bias``. In training the running statistics move exactly as
after G sequential calls in group order - ``r <- (1 - m) r + m s_g`` for g = 0..G-1, i.e.
``r_G = (1 - m)^G r_0 + sum_g m (1 - m)^(G - 1 - g) s_g`` with the unbiased batch variance -
using only the groups ``update`` names (True: all, False: none, or a slice / index tensor of
the flattened groups). Leading dimensions before (B, C) are flattened into G.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GroupBatchNorm(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.channels, self.eps, self.momentum = int(channels), float(eps), float(momentum)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(
        self, x: Tensor, update: bool | slice | Tensor = True, frozen: bool = False
    ) -> Tensor:
        """``x`` (..., B, C); ``frozen``: use detached affine parameters (gradient reaches x)."""
        if x.shape[-1] != self.channels:
            raise ValueError(f"GroupBatchNorm: expected {self.channels} channels; got {x.shape}")
        w = self.weight.detach() if frozen else self.weight
        b = self.bias.detach() if frozen else self.bias
        if not self.training:
            inv = torch.rsqrt(self.running_var + self.eps)
            return (x - self.running_mean) * (inv * w) + b
        items = x.shape[-2]
        if items < 2:
            raise ValueError("GroupBatchNorm: training needs more than one item per group")
        mean = x.mean(dim=-2, keepdim=True)
        xc = x - mean
        var = (xc * xc).mean(dim=-2, keepdim=True)
        y = xc * (torch.rsqrt(var + self.eps) * w) + b
        if update is not False:
            self._update_running(mean.detach(), var.detach(), items, update)
        return y

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor, items: int, update) -> None:
        mean = mean.reshape(-1, self.channels)
        var = var.reshape(-1, self.channels) * (items / (items - 1))
        if update is not True:
            mean, var = mean[update], var[update]
        g = mean.shape[0]
        if g == 0:
            return
        m = self.momentum
        # weight of call k (0-based) after all g calls: m (1 - m)^(g - 1 - k)
        powers = torch.arange(g - 1, -1, -1, dtype=mean.dtype, device=mean.device)
        coef = (m * (1.0 - m) ** powers).unsqueeze(1)
        keep = (1.0 - m) ** g
        self.running_mean.mul_(keep).add_((coef * mean).sum(0))
        self.running_var.mul_(keep).add_((coef * var).sum(0))
        self.num_batches_tracked.add_(g)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}, momentum={self.momentum}"
