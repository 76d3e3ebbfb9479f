"""Segmentation losses on per-point logits with an ignore mask.

* :func:`focal_loss`: multi-class focal loss (Lin et al., ICCV 2017) ``-(1 - p_t)^gamma log p_t``,
  averaged over the valid points; ``gamma = 0`` is the cross-entropy.
* :func:`lovasz_softmax`: the Lovasz-softmax loss (Berman et al., CVPR 2018), the Lovasz extension
  of the Jaccard loss 1 - IoU_c of each class present in the targets, averaged over those classes.
  On one-hot probabilities it equals ``mean_c (1 - IoU_c)`` exactly.

Every function takes logits (N, C), targets (N,) in 0..C-1 and a bool mask (N,) of the points
to use, and returns 0 (with a gradient path) when no point is valid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _valid(logits: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    if mask is None:
        return logits, target
    return logits[mask], target[mask]


def cross_entropy(logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    x, y = _valid(logits, target, mask)
    if y.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(x.float(), y)


def focal_loss(
    logits: Tensor, target: Tensor, mask: Tensor | None = None, gamma: float = 2.0
) -> Tensor:
    x, y = _valid(logits, target, mask)
    if y.numel() == 0:
        return logits.sum() * 0.0
    log_p = torch.log_softmax(x.float(), dim=1).gather(1, y[:, None]).squeeze(1)
    weight = (1.0 - log_p.exp()).clamp(min=0).pow(gamma) if gamma else 1.0
    return -(weight * log_p).mean()


def lovasz_grad(sorted_fg: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. the sorted errors: the
    increments of ``1 - |fg minus the first k| / |fg union the first k|`` over k."""
    total = sorted_fg.sum()
    intersection = total - sorted_fg.cumsum(0)
    union = total + (1.0 - sorted_fg).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_from_probabilities(probs: Tensor, target: Tensor) -> Tensor:
    """Lovasz-softmax of probabilities (N, C) against targets (N,), classes present only."""
    losses = []
    for c in torch.unique(target).tolist():
        fg = (target == c).to(probs.dtype)
        errors = (fg - probs[:, c]).abs()
        order = torch.argsort(errors, descending=True)
        losses.append(torch.dot(errors[order], lovasz_grad(fg[order])))
    return torch.stack(losses).mean()


def lovasz_softmax(logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    x, y = _valid(logits, target, mask)
    if y.numel() == 0:
        return logits.sum() * 0.0
    return lovasz_from_probabilities(torch.softmax(x.float(), dim=1), y)
