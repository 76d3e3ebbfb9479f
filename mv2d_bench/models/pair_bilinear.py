"""MvNNcor's pair relation ``W vec(f_i f_j^T)`` for every ordered view pair, without the outer
products.

MvNNcor forms the outer product ``f_i f_j^T`` (d x d) of every ordered pair of view features,
flattens it and applies one shared ``Linear(d * d, d_out)``. Written out, output o is the
bilinear form ``sum_{a,c} W[o, a, c] f_i[a] f_j[c]``. Materialising the n^2 outer products costs
B n^2 d^2 memory and B n^2 d^2 d_out multiply-adds; contracting W with one factor first,

    G[b, j, a, o] = sum_c W[o, a, c] f_j[c]          one (B n, d) x (d, d d_out) matmul
    R[b, i, j, o] = sum_a f_i[a] G[b, j, a, o]       a batched (n, d) x (d, d_out) per (b, j)

costs B n d^2 d_out (n times less) and never builds the outer products. The weight is stored as
``(d_c, d_a, d_out)`` (``weight[c, a, o] = W[o, a, c]``), the layout the first matmul reads;
:func:`linear_weight` / :func:`from_linear_weight` convert to and from ``nn.Linear(d*d, d_out)``
(input index ``a * d + c``, the row-major flattening of ``f_i f_j^T``).

:func:`pair_bilinear` is a custom autograd function. With ``streams=2`` it returns the relations
twice (equal values): gradients reaching the first copy flow to the features and the weight,
gradients reaching the second only to the features. That is how a consumer (the leave-one-out
predictions of the distillation terms) sees the relation module "through detached parameters"
while sharing the one forward computation, at no extra backward cost.
"""

from __future__ import annotations

import torch
from torch import Tensor


def linear_weight(weight: Tensor) -> Tensor:
    """(d, d, d_out) stored weight -> the (d_out, d * d) weight of the equivalent nn.Linear."""
    d, _, d_out = weight.shape
    return weight.permute(2, 1, 0).reshape(d_out, d * d)


def from_linear_weight(w: Tensor) -> Tensor:
    """The (d_out, d * d) weight of an nn.Linear -> the (d, d, d_out) stored layout."""
    d_out, dd = w.shape
    d = int(round(dd**0.5))
    if d * d != dd:
        raise ValueError(f"expected a (d_out, d*d) weight; got {tuple(w.shape)}")
    return w.reshape(d_out, d, d).permute(2, 1, 0).contiguous()


def _relations(feats: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    b, n, d = feats.shape
    d_out = weight.shape[2]
    g = (feats.reshape(b * n, d) @ weight.reshape(d, d * d_out)).view(b, n, d, d_out)
    r = torch.matmul(feats.unsqueeze(1), g)  # (B, n_j, n_i, d_out)
    return r.transpose(1, 2), g  # (B, n_i, n_j, d_out)


class _PairBilinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats: Tensor, weight: Tensor, streams: int):
        feats = feats.contiguous()
        rel, g = _relations(feats, weight)
        ctx.save_for_backward(feats, weight, g)
        ctx.set_materialize_grads(False)
        if streams == 1:
            return rel
        return rel, rel.clone()

    @staticmethod
    def backward(ctx, *grads):
        feats, weight, g = ctx.saved_tensors
        b, n, d = feats.shape
        d_out = weight.shape[2]
        live = grads[0]
        frozen = grads[1] if len(grads) > 1 else None
        total = live if frozen is None else (frozen if live is None else live + frozen)
        grad_feats = grad_weight = None
        ft = feats.unsqueeze(1).transpose(-1, -2)  # (B, 1, d, n_i)
        if total is not None and ctx.needs_input_grad[0]:
            dr = total.transpose(1, 2)  # (B, n_j, n_i, d_out)
            first = torch.matmul(dr, g.transpose(-1, -2)).sum(1)  # (B, n_i, d)
            dg = torch.matmul(ft, dr).reshape(b * n, d * d_out)
            second = (dg @ weight.reshape(d, d * d_out).t()).view(b, n, d)
            grad_feats = first + second
        if live is not None and ctx.needs_input_grad[1]:
            dg_live = torch.matmul(ft, live.transpose(1, 2)).reshape(b * n, d * d_out)
            grad_weight = (feats.reshape(b * n, d).t() @ dg_live).view(d, d, d_out)
        return grad_feats, grad_weight, None


def pair_bilinear(
    feats: Tensor, weight: Tensor, streams: int = 1
) -> Tensor | tuple[Tensor, Tensor]:
    """Relations of every ordered view pair: ``feats`` (B, n, d), ``weight`` (d, d, d_out) ->
    (B, n, n, d_out) with ``[b, i, j] = W vec(f_i f_j^T)`` (no bias); ``streams=2`` returns a
    second copy whose gradients do not reach ``weight`` (see the module docstring)."""
    if feats.dim() != 3 or weight.dim() != 3 or weight.shape[:2] != (feats.shape[2],) * 2:
        raise ValueError(
            f"pair_bilinear: expected feats (B, n, d) and weight (d, d, d_out); got "
            f"{tuple(feats.shape)} and {tuple(weight.shape)}"
        )
    if streams not in (1, 2):
        raise ValueError(f"pair_bilinear: streams must be 1 or 2; got {streams}")
    if not torch.is_grad_enabled() or not (feats.requires_grad or weight.requires_grad):
        rel, _ = _relations(feats, weight)
        return rel if streams == 1 else (rel, rel)
    return _PairBilinear.apply(feats, weight, streams)
