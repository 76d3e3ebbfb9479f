"""How a per-view-classifier fusion combines its n per-view predictions into one.

Both weightings take per-view logits ``(K, B, n, C)`` for K view subsets (0/1 ``weights``
``(K, B, n)``) and return ``sum_v a_v w_v logits_v / sum_v a_v w_v`` per subset and item: a view
outside the subset (w_v = 0) has no influence, and for the subset of all views the weights are
used as they are.

* :class:`LearntViewWeights` - ``a = softmax(theta)``, theta learnt with the network (the
  ``multiview-ib`` model's relation fusions).
* :class:`LossViewWeights` - MvNNcor's adaptive weights (Xu et al., AAAI 2020): a buffer ``a``
  (initially 1/n) that is not trained by gradient. Each training step's loss is
  ``sum_v a_v^gamma CE_v`` with the current ``a``; afterwards ``a`` is replaced by the closed-form
  minimiser of that loss under ``sum_v a_v = 1`` for the step's per-view cross-entropies,
  ``a_v = CE_v^(1/(1-gamma)) / sum_u CE_u^(1/(1-gamma))`` (detached). The fused prediction of a
  step uses the weights from before its update, as MvNNcor's training loop does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CE_FLOOR = 1e-12
"""Cross-entropies are floored here before the power 1/(1-gamma) (a zero loss would give inf)."""


def _combine(base: Tensor, view_logits: Tensor, weights: Tensor) -> Tensor:
    a = base * weights.to(view_logits.dtype)
    a = a / a.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(a.dtype).tiny)
    return (a.unsqueeze(-1) * view_logits).sum(-2)


class LearntViewWeights(nn.Module):
    def __init__(self, n_views: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_views))

    def base(self, frozen: bool = False) -> Tensor:
        theta = self.logits.detach() if frozen else self.logits
        return torch.softmax(theta, dim=0)

    def forward(self, view_logits: Tensor, weights: Tensor, frozen: bool = False) -> Tensor:
        return _combine(self.base(frozen), view_logits, weights)


class LossViewWeights(nn.Module):
    def __init__(self, n_views: int, gamma: float = 6.0) -> None:
        super().__init__()
        if gamma <= 1.0:
            raise ValueError(f"LossViewWeights: gamma must be > 1; got {gamma}")
        self.n_views, self.gamma = int(n_views), float(gamma)
        self.register_buffer("weight", torch.full((n_views,), 1.0 / n_views))

    def base(self, frozen: bool = False) -> Tensor:
        return self.weight

    def forward(self, view_logits: Tensor, weights: Tensor, frozen: bool = False) -> Tensor:
        return _combine(self.weight, view_logits, weights)

    def loss(self, view_logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """``sum_v a_v^gamma CE_v`` for per-view logits ``(B, n, C)``; updates ``a`` (training).

        The per-view cross-entropies are computed in one call; the new weights replace the
        buffer (a new tensor, so the graph of this step keeps the weights it used).
        """
        b, n, c = view_logits.shape
        ce = F.cross_entropy(
            view_logits.reshape(b * n, c),
            target.repeat_interleave(n),
            reduction="none",
            label_smoothing=label_smoothing,
        )
        ce = ce.view(b, n).mean(0)  # (n,) per-view mean CE
        loss = (self.weight**self.gamma * ce).sum()
        if self.training:
            self.weight = self.closed_form(ce.detach(), self.gamma)
        return loss

    @staticmethod
    def closed_form(ce: Tensor, gamma: float) -> Tensor:
        """argmin over the simplex of sum_v a_v^gamma CE_v: a_v proportional to CE_v^(1/(1-g))."""
        up = ce.clamp(min=CE_FLOOR) ** (1.0 / (1.0 - gamma))
        return up / up.sum()

    def extra_repr(self) -> str:
        return f"n_views={self.n_views}, gamma={self.gamma}"
