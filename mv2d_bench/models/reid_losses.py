"""ReID task losses: the batch-hard triplet and the ranked-list rank losses. Pure tensor code,
device-agnostic.

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


def ranked_list_loss(
    features: Tensor,
    labels: Tensor,
    modality: Tensor,
    margins: tuple[float, float] = (0.9, 1.0),
    alphas: tuple[float, float] = (2.2, 2.0),
    temperature: float = 1.0,
) -> Tensor:
    """The cross-modality ranked-list rank loss of the MV2D authors' ReID code, on L2-normalised
    features, averaged over anchors.

    With ``d`` the Euclidean distance of unit vectors and, for anchor ``a``, ``(m, alpha)`` =
    ``(margins[0], alphas[0])`` for items of its own modality and ``(margins[1], alphas[1])``
    for the other modality:

    - positives ``p`` (same label, not ``a``): ``sum_p relu(d(a, p) + m - alpha) / (n_p + 1e-5)``
      per modality group;
    - negatives ``n`` (other labels) closer than ``alpha``: weighted by
      ``w = exp(temperature * (alpha - d(a, n)))``, ``sum_n w (alpha - d) / (sum_n w + 1e-5)``
      per modality group.

    The anchor's loss is the sum of the four terms. Pure tensor code, device-agnostic."""
    if features.dim() != 2 or labels.shape != features.shape[:1] or modality.shape != labels.shape:
        raise ValueError(
            f"features must be (items, d), labels and modality (items,); got "
            f"{tuple(features.shape)}, {tuple(labels.shape)} and {tuple(modality.shape)}"
        )
    x = F.normalize(features.float(), dim=1)
    dist = pairwise_euclidean(x)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    intra = modality[:, None] == modality[None, :]
    total = dist.new_zeros(len(labels))
    for group, m, alpha in ((intra, margins[0], alphas[0]), (~intra, margins[1], alphas[1])):
        pos = same & ~eye & group
        pos_loss = torch.where(pos, F.relu(dist + (m - alpha)), 0.0).sum(1)
        total = total + pos_loss / (pos.sum(1) + 1e-5)
        neg = ~same & group & (dist < alpha)
        w = torch.where(neg, torch.exp(temperature * (alpha - dist)), 0.0)
        total = total + (w * (alpha - dist)).sum(1) / (w.sum(1) + 1e-5)
    return total.mean()
