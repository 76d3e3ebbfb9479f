"""Rank (metric-learning) losses of the MVC task, batched over views: ``feats`` (n, B, d), or a
list of such stacks of different widths (v and z), whose views all count alike.

* :func:`batch_hard_triplet_views` - the batch-hard triplet loss (Hermans et al. 2017) per view:
  for every anchor the farthest same-label item against the nearest other-label item,
  ``max(0, d_ap - d_an + margin)`` (Euclidean), averaged over the anchors that have both.
* :func:`ranked_list_views` - the weighted ranked-list loss of the MV2D authors' released ReID
  code (after Wang et al., "Ranked List Loss for Deep Metric Learning", CVPR 2019), with one
  modality: features L2-normalised, Euclidean distances d; for anchor i
  ``L_P = sum_{p pos} max(0, d_ip - (alpha - m)) / (|P| + 1e-5)`` (positives hinged at
  alpha - m) and, over the negatives inside alpha, weights ``w = exp(T (alpha - d_in))`` and
  ``L_N = sum w (alpha - d_in) / (sum w + 1e-5)``; the loss is ``mean_i (L_P + L_N)`` (their
  defaults alpha 2.2, m 0.9, T 1; the weights are not detached, as there).

Both return the mean over views and never read a value back to the host (no data-dependent
branch), so they add no synchronisation to a training step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _distances(feats: Tensor | list[Tensor], normalize: bool = False) -> Tensor:
    """Euclidean distances within each view: (n, B, B) (all stacks' views concatenated)."""
    stacks = feats if isinstance(feats, (list, tuple)) else [feats]
    d2 = []
    for x in stacks:
        if normalize:
            x = F.normalize(x, p=2, dim=-1)
        sq = x.pow(2).sum(-1)
        d2.append(
            torch.baddbmm(sq.unsqueeze(-1) + sq.unsqueeze(-2), x, x.transpose(-1, -2), alpha=-2.0)
        )
    d2 = d2[0] if len(d2) == 1 else torch.cat(d2)
    return d2.clamp(min=1e-12).sqrt()


def _masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard_triplet_views(feats: Tensor | list[Tensor], labels: Tensor, margin: float) -> Tensor:
    dist = _distances(feats)
    pos, neg = _masks(labels)
    valid = (pos.any(1) & neg.any(1)).to(dist.dtype)  # (B,) anchors with both
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(-1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).amin(-1)
    gap = torch.where(valid.bool(), hardest_pos - hardest_neg, torch.zeros_like(hardest_pos))
    loss = F.relu(gap + margin) * valid  # (n, B)
    return loss.sum() / (valid.sum() * dist.shape[0]).clamp(min=1.0)


def ranked_list_views(
    feats: Tensor | list[Tensor],
    labels: Tensor,
    alpha: float = 2.2,
    margin: float = 0.9,
    temperature: float = 1.0,
) -> Tensor:
    dist = _distances(feats, normalize=True)
    pos, neg = _masks(labels)
    pos_f = pos.to(dist.dtype)
    loss_p = (F.relu(dist + (margin - alpha)) * pos_f).sum(-1) / (pos_f.sum(-1) + 1e-5)
    inside = (neg & (dist < alpha)).to(dist.dtype)
    gap = (alpha - dist) * inside
    w = torch.exp(temperature * gap) * inside
    loss_n = (w * gap).sum(-1) / (w.sum(-1) + 1e-5)
    return (loss_p + loss_n).mean()
