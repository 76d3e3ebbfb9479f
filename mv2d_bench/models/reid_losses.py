"""ReID task losses: the batch-hard triplet (rank) loss. Pure tensor code, device-agnostic.

Cross-entropy with label smoothing is torch's own
(``torch.nn.functional.cross_entropy(..., label_smoothing=eps)``); nothing is re-implemented here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pairwise_euclidean(x: Tensor, y: Tensor | None = None) -> Tensor:
    """Euclidean distances between the rows of ``x`` (m, d) and ``y`` (n, d): (m, n).

    Computed from ``|x|^2 + |y|^2 - 2 x.y`` (clamped at a tiny positive value before the square
    root, so that the gradient of a zero distance is finite).
    """
    y = x if y is None else y
    x, y = x.float(), y.float()
    sq = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None, :] - 2.0 * x @ y.t()
    return sq.clamp(min=1e-12).sqrt()


def batch_hard_triplet(features: Tensor, labels: Tensor, margin: float | None = 0.3) -> Tensor:
    """The batch-hard triplet loss of Hermans et al. (2017), averaged over anchors.

    For every anchor a: the hardest positive is the farthest item with the same label (the anchor
    itself excluded), the hardest negative the nearest item with another label; the loss is
    ``max(0, d(a, p) - d(a, n) + margin)``, or ``softplus(d(a, p) - d(a, n))`` when ``margin``
    is None (the soft-margin variant). Anchors without a positive or without a negative in the
    batch do not count; the loss is 0 when no anchor counts.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"features must be (items, d) and labels (items,); got {tuple(features.shape)} "
            f"and {tuple(labels.shape)}"
        )
    dist = pairwise_euclidean(features)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return features.new_zeros((), dtype=torch.float32)
    hardest_pos = torch.where(pos, dist, torch.full_like(dist, -torch.inf)).amax(1)
    hardest_neg = torch.where(neg, dist, torch.full_like(dist, torch.inf)).amin(1)
    gap = (hardest_pos - hardest_neg)[valid]
    per_anchor = F.softplus(gap) if margin is None else F.relu(gap + float(margin))
    return per_anchor.mean()
