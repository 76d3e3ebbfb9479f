"""Fused and leave-one-out predictions in one batched pass.

MV2D's consistency term compares p(y | z_1..z_n) with p(y | all views but i) for every i. Rather
than running the fusion module n + 1 times, :class:`LeaveOneOutFusion` stacks the n + 1 view
subsets along a new leading dimension K and calls the fusion module once with per-subset 0/1
view weights:

* subset 0: every present view (the fused prediction P_Z);
* subset 1 + i: every present view except view i (P_Z\\i).

A fusion module (``fuse``) therefore takes ``reps`` (K, B, n, d) and ``weights`` (K, B, n) and
returns logits (K, B, C); a view whose weight is 0 must have no influence on that subset's
output (mask it out of means, attention, pairwise relations...). :class:`MeanFusion` is the
default: a masked mean over views followed by a linear (or MLP) classifier.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def subset_masks(n_views: int, present: Tensor | None = None) -> Tensor:
    """Bool view masks of the fused subset and the n leave-one-out subsets.

    Returns (n + 1, n) without ``present`` or with ``present`` of shape (n,), and (n + 1, B, n)
    with ``present`` of shape (B, n): row 0 holds every present view, row 1 + i every present
    view except i. ``present`` says which views exist (True) per view or per item.
    """
    if n_views < 1:
        raise ValueError(f"n_views must be >= 1; got {n_views}")
    device = None if present is None else present.device
    rows = ~torch.eye(n_views, dtype=torch.bool, device=device)
    masks = torch.cat([torch.ones(1, n_views, dtype=torch.bool, device=device), rows])
    if present is None:
        return masks
    present = present.to(torch.bool)
    if present.shape == (n_views,):
        return masks & present
    if present.dim() == 2 and present.shape[1] == n_views:
        return masks[:, None, :] & present[None, :, :]
    raise ValueError(
        f"present must have shape ({n_views},) or (B, {n_views}); got {tuple(present.shape)}"
    )


class LeaveOneOutFusion(nn.Module):
    """Wrap a fusion module so one call gives the fused and all n leave-one-out logits.

    ``fuse(reps (K, B, n, d), weights (K, B, n) float 0/1) -> logits (K, B, C)`` is called once,
    with K = n + 1 (or K = 1 with ``loo=False``). The per-view representations must share their
    width d. With a single view there is no leave-one-out prediction and ``loo_logits`` is None.
    A fuse whose attribute ``broadcast_reps`` is True receives ``reps`` as (1, B, n, d), to be
    broadcast against the K subsets of ``weights`` (per-view work is then done once, and autograd
    never materialises a K-fold copy).
    """

    def __init__(self, fuse: nn.Module) -> None:
        super().__init__()
        self.fuse = fuse

    def forward(
        self, reps: list[Tensor], present: Tensor | None = None, loo: bool = True
    ) -> tuple[Tensor, list[Tensor] | None]:
        n = len(reps)
        if n == 0:
            raise ValueError("LeaveOneOutFusion needs at least one view representation")
        shapes = {tuple(r.shape) for r in reps}
        if len(shapes) != 1 or reps[0].dim() != 2:
            raise ValueError(
                "LeaveOneOutFusion: reps must be n tensors of one shape (B, d); got shapes "
                + ", ".join(str(tuple(r.shape)) for r in reps)
            )
        batch = reps[0].shape[0]
        if present is not None and present.dim() == 2 and present.shape[0] != batch:
            raise ValueError(
                f"present has {present.shape[0]} rows; expected one per item ({batch})"
            )
        loo = loo and n >= 2
        masks = subset_masks(n, present)
        if not loo:
            masks = masks[:1]
        k = masks.shape[0]
        if masks.dim() == 2:
            masks = masks[:, None, :].expand(k, batch, n)
        weights = masks.to(reps[0].dtype)
        stacked = torch.stack(reps, dim=1)[None]
        if not getattr(self.fuse, "broadcast_reps", False):
            stacked = stacked.expand(k, batch, n, reps[0].shape[1])
        logits = self.fuse(stacked, weights)
        if logits.dim() != 3 or logits.shape[:2] != (k, batch):
            raise ValueError(
                f"fuse returned shape {tuple(logits.shape)}; expected ({k}, {batch}, classes)"
            )
        return logits[0], (list(logits[1:].unbind(0)) if loo else None)


class MeanFusion(nn.Module):
    """Masked mean of the view representations, then a classifier.

    ``forward(reps (..., n, d), weights (..., n)) -> logits (..., C)``. A subset with no view
    averages to the zero vector (its logits are the classifier's response to 0, never NaN).
    ``hidden`` adds one ReLU hidden layer.
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: int | None = None) -> None:
        super().__init__()
        if hidden:
            self.head = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
            )
        else:
            self.head = nn.Linear(in_dim, n_classes)

    def forward(self, reps: Tensor, weights: Tensor) -> Tensor:
        w = weights.to(reps.dtype).unsqueeze(-1)
        tiny = torch.finfo(w.dtype).tiny  # an empty subset sums to 0 and stays 0
        mean = (reps * w).sum(dim=-2) / w.sum(dim=-2).clamp(min=tiny)
        return self.head(mean)
