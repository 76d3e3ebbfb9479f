"""``relation-full`` fusion: MvNNcor's relation module f_psi and shared classifier, for any n.

As in MvNNcor's ``models/network_MvNNcor.py`` (github.com/xujinglin/MvNNcor), for view features
f_1..f_n of width d:

* **f_psi**: for every ordered pair (i, j) - all n^2, the diagonal included - the outer product
  ``f_i f_j^T`` is flattened and mapped by ONE shared ``Linear(d * d, d)``, then ``BatchNorm1d(d)``
  and ReLU: ``rel_ij``. MvNNcor calls that Linear + BN once per pair, so the BatchNorm normalises
  each pair with its own batch statistics and its running statistics move n^2 times per step, in
  pair order; :class:`~mv2d_bench.models.group_batchnorm.GroupBatchNorm` does exactly that in one
  pass. The relations are computed by :func:`~mv2d_bench.models.pair_bilinear.pair_bilinear`
  (a batched contraction, no outer products, no Python loop over pairs).
* **classifier** (ONE, shared by all views): view k's input is ``[f_k, rel_kj for j != k in
  order]`` (n d wide), mapped by ``Linear(n d, hidden) BN ReLU Dropout Linear(hidden, C) BN(C)``,
  called once per view (per-view batch statistics, running statistics moved n times).
* **combination**: per-view logits are combined with view weights (``weighting``:
  :class:`~mv2d_bench.models.mvc_fusion.view_weights.LossViewWeights` for MvNNcor's closed-form
  weights, :class:`~.view_weights.LearntViewWeights` otherwise).

Subsets: in a row whose subset leaves view j out, every ``rel_kj`` slot is zero (view j "enters
neither the relations nor the sum") and view j's own prediction gets weight 0. Only the row of
all views in the live stream moves the running statistics (its n classifier calls in view
order), so evaluation behaves as MvNNcor's; leave-one-out rows use batch statistics of their
own. The classifier's first Linear is split into blocks (own features; one block per relation
slot), so the slot products are computed once per call and each subset only sums them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mv2d_bench.models.dropout import FastDropout
from mv2d_bench.models.group_batchnorm import GroupBatchNorm
from mv2d_bench.models.mvc_fusion.base import FusionOutput, SubsetFusion, param
from mv2d_bench.models.pair_bilinear import pair_bilinear


def slot_index(n: int) -> Tensor:
    """(n - 1, n): ``[s, k]`` = the view j in relation slot s of view k (j != k, ascending)."""
    s = torch.arange(n - 1).unsqueeze(1)
    k = torch.arange(n).unsqueeze(0)
    return s + (s >= k).long()


def _init(t: Tensor, fan_in: int, std: float) -> Tensor:
    with torch.no_grad():
        if std > 0:
            return t.normal_(0.0, std)
        bound = 1.0 / math.sqrt(fan_in)
        return t.uniform_(-bound, bound)


class RelationFullFusion(SubsetFusion):
    name = "relation-full"
    per_view = True

    def __init__(
        self,
        n_views: int,
        dim: int,
        num_classes: int,
        hidden: int = 300,
        dropout: float = 0.5,
        weighting: nn.Module | None = None,
        init_std: float = 0.0,
    ) -> None:
        super().__init__()
        from mv2d_bench.models.mvc_fusion.view_weights import LearntViewWeights

        self.n_views, self.dim, self.hidden = int(n_views), int(dim), int(hidden)
        n, d, h = self.n_views, self.dim, self.hidden
        self.psi_weight = nn.Parameter(_init(torch.empty(d, d, d), d * d, init_std))
        self.psi_bias = nn.Parameter(_init(torch.empty(d), d * d, 0.0))
        self.psi_bn = GroupBatchNorm(d)
        self.cls_weight1 = nn.Parameter(_init(torch.empty(n, d, h), n * d, init_std))
        self.cls_bias1 = nn.Parameter(_init(torch.empty(h), n * d, 0.0))
        self.cls_bn1 = GroupBatchNorm(h)
        self.drop = FastDropout(dropout)
        self.cls_weight2 = nn.Parameter(_init(torch.empty(h, num_classes), h, init_std))
        self.cls_bias2 = nn.Parameter(_init(torch.empty(num_classes), h, 0.0))
        self.cls_bn2 = GroupBatchNorm(num_classes)
        self.weighting = weighting if weighting is not None else LearntViewWeights(n)
        self.register_buffer("slots", slot_index(n), persistent=False)

    def _stream(
        self, raw: Tensor, reps: Tensor, w: Tensor, frozen: bool, mask: Tensor | None
    ) -> Tensor:
        """Per-view logits (R, B, n, C) of the rows ``w`` (R, B, n) from one parameter stream."""
        n = self.n_views
        update = not frozen
        rel = (raw + param(self.psi_bias, frozen)).permute(1, 2, 0, 3)  # (n_i, n_j, B, d)
        rel = torch.relu(self.psi_bn(rel, update=update, frozen=frozen))
        w1 = param(self.cls_weight1, frozen)
        own = (reps @ w1[0]).transpose(0, 1) + param(self.cls_bias1, frozen)  # (n, B, H)
        pre = own.unsqueeze(0).expand(w.shape[0], *own.shape)
        if n > 1:
            views = torch.arange(n, device=reps.device).unsqueeze(0)
            per_slot = rel[views, self.slots]  # (n - 1, n, B, d): [s, k] = rel_{k, slot s}
            b = reps.shape[0]
            t = torch.bmm(per_slot.reshape(n - 1, n * b, self.dim), w1[1:])
            t = t.view(n - 1, n, b, self.hidden)
            present = w[:, :, self.slots]  # (R, B, n - 1, n): is the view in slot s present
            pre = pre + torch.einsum("rbsk,skbh->rkbh", present, t)
        groups = slice(0, n) if update else False  # the fused row's n classifier calls
        h = torch.relu(self.cls_bn1(pre, update=groups, frozen=frozen))
        if mask is not None:
            h = h * mask
        logits = h @ param(self.cls_weight2, frozen) + param(self.cls_bias2, frozen)
        logits = self.cls_bn2(logits, update=groups, frozen=frozen)  # (R, n, B, C)
        return logits.permute(0, 2, 1, 3)

    def forward(self, reps: Tensor, weights: Tensor, live: int) -> FusionOutput:
        if reps.dim() != 3 or reps.shape[1:] != (self.n_views, self.dim):
            raise ValueError(
                f"relation-full: reps must be (B, {self.n_views}, {self.dim}); "
                f"got {tuple(reps.shape)}"
            )
        w = weights.to(reps.dtype)
        k, b = w.shape[0], reps.shape[0]
        split = live < k
        raw = pair_bilinear(reps, self.psi_weight, 2 if split else 1)
        raw_live, raw_frozen = raw if split else (raw, None)
        mask = self.drop.mask((1, self.n_views, b, self.hidden), reps)
        views = self._stream(raw_live, reps, w[:live], False, mask)
        fused = self.weighting(views, w[:live], frozen=False)
        if split:
            fviews = self._stream(raw_frozen, reps, w[live:], True, mask)
            views = torch.cat([views, fviews])
            fused = torch.cat([fused, self.weighting(fviews, w[live:], frozen=True)])
        return FusionOutput(fused, views)
