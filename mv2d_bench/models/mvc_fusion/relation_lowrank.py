"""``relation-lowrank`` fusion: a rank-r bilinear view-pair relation with learnt view weights.

The fusion the ``multiview-ib`` model used before ``model.fusion`` existed (then described as
MvNNcor's relation module). With f = Dropout(reps), for each subset S (a row of ``weights``)
and each view k in S::

    rel_kj  = ReLU(U f_k * V f_j)                        (one relation per ordered view pair)
    logit_k = S(ReLU(A f_k)) + R mean_{j in S, j != k} rel_kj     (R term 0 if k is alone)
    fused   = sum_k a_k logit_k / sum_{k in S} a_k,   a = softmax(theta)

``U f_k * V f_j`` factorises MvNNcor's ``W vec(f_k f_j^T)`` at rank r (then ReLU, as MvNNcor);
the relations are averaged over the other present views instead of concatenated, so any subset
is fused. Nothing but the coefficients depends on the subset: the view terms ``S(ReLU(A f_k))``
and the pair terms ``R rel_kj`` are computed once per call (shared by the live and the frozen
rows through :func:`~mv2d_bench.models.two_stream.two_stream`), and every subset's prediction
is one weighted sum of those n + n^2 terms (a single batched matmul).
Parameters: ``a_uv`` holds [A | U | V] (d, hidden + 2r) so one matmul gives all three.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mv2d_bench.models.dropout import FastDropout
from mv2d_bench.models.mvc_fusion.base import FusionOutput, SubsetFusion
from mv2d_bench.models.mvc_fusion.view_weights import LearntViewWeights
from mv2d_bench.models.perview import uniform_parameter
from mv2d_bench.models.two_stream import two_stream


class RelationLowRankFusion(SubsetFusion):
    name = "relation-lowrank"

    def __init__(
        self,
        n_views: int,
        dim: int,
        num_classes: int,
        rank: int = 16,
        hidden: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.n_views, self.dim, self.rank, self.hidden = n_views, dim, rank, hidden
        self.drop = FastDropout(dropout)
        self.a_uv = uniform_parameter(
            (dim, hidden + 2 * rank), dim
        )  # [A | U | V], as nn.Linear(dim, .)
        self.a_bias = uniform_parameter((hidden,), dim)
        self.s = uniform_parameter((hidden, num_classes), hidden)
        self.s_bias = uniform_parameter((num_classes,), hidden)
        self.r = uniform_parameter((rank, num_classes), rank)
        self.weighting = LearntViewWeights(n_views)
        self.register_buffer("off", 1.0 - torch.eye(n_views), persistent=False)

    def _terms(
        self, f: Tensor, a_uv: Tensor, a_bias: Tensor, s: Tensor, s_bias: Tensor, r: Tensor
    ) -> Tensor:
        """(B, n + n^2, C): the n view terms, then the n^2 pair terms [k, j] (row-major)."""
        b, n, _ = f.shape
        h, rank = self.hidden, self.rank
        x = f @ a_uv
        own = torch.relu(x[..., :h] + a_bias) @ s + s_bias  # (B, n, C)
        u, v = x[..., h : h + rank], x[..., h + rank :]
        pairs = torch.relu(u.unsqueeze(2) * v.unsqueeze(1))  # (B, n, n, r): [b, k, j]
        return torch.cat([own, (pairs @ r).view(b, n * n, -1)], dim=1)

    def _params(self) -> tuple[Tensor, ...]:
        return (self.a_uv, self.a_bias, self.s, self.s_bias, self.r)

    def _coefficients(self, w: Tensor, frozen: bool) -> Tensor:
        """(K, B, n + n^2): each row's weight of the view terms and the pair terms."""
        k, b, n = w.shape
        alpha = self.weighting.base(frozen) * w
        alpha = alpha / alpha.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(alpha.dtype).tiny)
        count = (w.sum(dim=-1, keepdim=True) - w).clamp(min=1.0)  # other present views
        coef = (alpha / count).unsqueeze(-1) * (w.unsqueeze(-2) * self.off)  # (K, B, n, n)
        return torch.cat([alpha, coef.view(k, b, n * n)], dim=-1)

    def _rows(self, terms: Tensor, w: Tensor, frozen: bool) -> Tensor:
        coef = self._coefficients(w, frozen).transpose(0, 1)  # (B, K, n + n^2)
        return torch.bmm(coef, terms).transpose(0, 1)  # (K, B, C)

    def forward(self, reps: Tensor, weights: Tensor, live: int) -> FusionOutput:
        if reps.dim() != 3 or reps.shape[1:] != (self.n_views, self.dim):
            raise ValueError(
                f"relation-lowrank: reps must be (B, {self.n_views}, {self.dim}); "
                f"got {tuple(reps.shape)}"
            )
        f = self.drop(reps)
        w = weights.to(reps.dtype)
        if live >= w.shape[0]:
            return FusionOutput(self._rows(self._terms(f, *self._params()), w, False))
        # the terms once; the frozen rows' gradient reaches f but no parameter
        live_terms, frozen_terms = two_stream(self._terms, f, *self._params())
        out = torch.cat(
            [self._rows(live_terms, w[:live], False), self._rows(frozen_terms, w[live:], True)]
        )
        return FusionOutput(out)
