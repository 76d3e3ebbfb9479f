"""The classifier of the ``mean`` and ``concat`` fusions, evaluated for K view subsets at once.

Both fusions are an MLP ``Linear(in, hidden) -> ReLU -> Dropout -> Linear(hidden, C)`` (one
Linear when ``hidden = 0``) applied to a per-subset input that is linear in the views:

* ``mean``: ``x_S = sum_{v in S} z_v / |S|`` and ``W x_S = sum_{v in S} (W z_v) / |S|``;
* ``concat``: ``x_S = [z_v if v in S else 0]_v`` and ``W x_S = sum_{v in S} W_v z_v`` with W_v the
  view's block of columns.

So the first Linear is applied once per view (``(B, n, d)``, as for one subset) and each subset
only sums those products - the n + 1 leave-one-out subsets cost little more than one. Rows
``[0, live)`` use the parameters, the others detached copies (the products are recomputed with
the detached weight, one subset's worth); the dropout mask (1, B, hidden) is drawn once and
shared by every row. Parameters are stored (in, out); ``concat``'s first weight is (n, d, hidden).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mv2d_bench.models.dropout import FastDropout
from mv2d_bench.models.mvc_fusion.base import param
from mv2d_bench.models.perview import uniform_parameter


class SubsetMLP(nn.Module):
    def __init__(
        self,
        n_views: int,
        dim: int,
        num_classes: int,
        hidden: int = 0,
        dropout: float = 0.0,
        per_view_blocks: bool = False,
    ) -> None:
        super().__init__()
        self.hidden, self.blocks = int(hidden), bool(per_view_blocks)
        fan_in = n_views * dim if per_view_blocks else dim
        width = self.hidden or num_classes
        shape = (n_views, dim, width) if per_view_blocks else (dim, width)
        self.w1 = uniform_parameter(shape, fan_in)
        self.b1 = uniform_parameter((width,), fan_in)
        if self.hidden:
            self.w2 = uniform_parameter((self.hidden, num_classes), self.hidden)
            self.b2 = uniform_parameter((num_classes,), self.hidden)
        self.drop = FastDropout(dropout)

    def _rows(self, reps: Tensor, coef: Tensor, frozen: bool, mask: Tensor | None) -> Tensor:
        w1 = param(self.w1, frozen)
        if self.blocks:
            per_view = torch.einsum("bnd,ndh->bnh", reps, w1)
        else:
            per_view = reps @ w1  # (B, n, width)
        x = torch.bmm(coef.transpose(0, 1), per_view).transpose(0, 1) + param(self.b1, frozen)
        if not self.hidden:
            return x
        x = torch.relu(x)
        if mask is not None:
            x = x * mask
        return x @ param(self.w2, frozen) + param(self.b2, frozen)

    def forward(self, reps: Tensor, coef: Tensor, live: int) -> Tensor:
        """``reps`` (B, n, d), ``coef`` (K, B, n): each row's weight of each view -> (K, B, C)."""
        mask = self.drop.mask((1, reps.shape[0], self.hidden), reps) if self.hidden else None
        out = self._rows(reps, coef[:live], False, mask)
        if live < coef.shape[0]:
            out = torch.cat([out, self._rows(reps, coef[live:], True, mask)])
        return out
