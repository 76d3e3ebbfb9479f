"""The MVC fusions' contract: K view subsets in one call, live and frozen parameter streams.

A fusion ``forward(reps, weights, live) -> FusionOutput``:

* ``reps`` (B, n, d): the per-view representations (z_i, or v_i without a bottleneck);
* ``weights`` (K, B, n) float 0/1: row k is one view subset (which views take part, per item);
* ``live``: rows ``[0, live)`` are computed with the fusion's parameters as they are; rows
  ``[live, K)`` with *detached* parameters - their gradient reaches ``reps`` (hence the encoders
  and bottlenecks) but no parameter of the fusion. This is how the distillation terms see the
  fused / leave-one-out heads "through detached parameters" (``model.distill_through_heads =
  false``) while the task's cross-entropy trains the heads, all in one batched call.

It returns ``logits`` (K, B, C) and, for fusions with a classifier per view, ``view_logits``
(K, B, n, C). A view whose weight is 0 has no influence on its row. Random masks (dropout) are
drawn once per call and shared by all rows, so every subset sees the same noise and a frozen
copy of a live row has its values (up to float rounding: the two streams are separate products,
which some BLAS kernels sum in a different order).

:func:`fuse_views` builds the rows - the fused prediction (all present views), optionally a
frozen copy of it for the objective, and the n leave-one-out subsets - and calls the fusion once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mv2d_bench.models.fusion import subset_masks
from mv2d_bench.views import StackedList


@dataclass
class FusionOutput:
    logits: Tensor
    """(K, B, C): one prediction per view subset."""
    view_logits: Tensor | None = None
    """(K, B, n, C): the per-view predictions a per-view-classifier fusion combines."""


@dataclass
class FusedViews:
    fused: Tensor
    """(B, C): all present views, live parameters (what the task loss and evaluation use)."""
    fused_for_objective: Tensor
    """(B, C): the same prediction as the objective sees it (frozen parameters when split)."""
    loo: list[Tensor] | None
    """n tensors (B, C): all views but i (frozen parameters when split); None if not asked."""
    view_logits: Tensor | None
    """(B, n, C): per-view predictions of the fused row (live), for per-view losses."""
    view_logits_for_objective: Tensor | None = None
    """(B, n, C): the same as the objective sees them (frozen parameters when split)."""


def param(p: Tensor, frozen: bool) -> Tensor:
    """``p`` itself, or detached for a frozen stream."""
    return p.detach() if frozen else p


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, frozen: bool) -> Tensor:
    """``x @ weight + bias`` (weight stored (in, out)) with live or detached parameters."""
    out = x @ param(weight, frozen)
    return out if bias is None else out + param(bias, frozen)


def split_rows(x: Tensor, live: int) -> tuple[Tensor, Tensor]:
    return x[:live], x[live:]


class SubsetFusion(nn.Module):
    """Base class; subclasses implement :meth:`forward` as described in the module docstring."""

    name: str = ""
    per_view: bool = False
    """True when the fusion classifies each view and combines (``view_logits`` is returned)."""

    def forward(self, reps: Tensor, weights: Tensor, live: int) -> FusionOutput:
        raise NotImplementedError


def fuse_views(
    fusion: SubsetFusion,
    reps: Tensor,
    present: Tensor | None = None,
    *,
    loo: bool = False,
    split: bool = False,
    need_fused: bool = True,
) -> FusedViews:
    """Run ``fusion`` once on the rows [fused (live), fused (frozen) if ``split`` and the
    objective reads it, leave-one-out x n (frozen if ``split``)]."""
    batch, n, _ = reps.shape
    masks = subset_masks(n, present)  # (n + 1, n) or (n + 1, B, n)
    if masks.dim() == 2:
        masks = masks[:, None, :].expand(n + 1, batch, n)
    loo = loo and n >= 2
    split = split and torch.is_grad_enabled()
    rows = [masks[:1]]
    frozen_fused = split and (need_fused or loo)
    if frozen_fused:
        rows.append(masks[:1])
    if loo:
        rows.append(masks[1:])
    weights = torch.cat(rows).to(reps.dtype) if len(rows) > 1 else rows[0].to(reps.dtype)
    live = 1 if split else weights.shape[0]
    out = fusion(reps, weights, live)
    k = weights.shape[0]
    if out.logits.shape[:2] != (k, batch):
        raise ValueError(
            f"{type(fusion).__name__} returned logits {tuple(out.logits.shape)}; "
            f"expected ({k}, {batch}, classes)"
        )
    fused = out.logits[0]
    obj = out.logits[1] if frozen_fused else fused
    first_loo = 2 if frozen_fused else 1
    loo_list = StackedList(out.logits[first_loo:]) if loo else None
    views = out.view_logits
    view_logits = views[0] if views is not None else None
    view_obj = views[1] if views is not None and frozen_fused else view_logits
    return FusedViews(fused, obj, loo_list, view_logits, view_obj)
