"""The MVC rank losses (loss.rank_type) against per-view, per-anchor references."""

from __future__ import annotations

import math

import torch

from mv2d_bench.models.rank_losses import batch_hard_triplet_views, ranked_list_views
from mv2d_bench.models.reid_losses import batch_hard_triplet


def test_batched_triplet_equals_the_reid_loss_per_view():
    torch.manual_seed(0)
    feats = torch.randn(3, 20, 5)
    labels = torch.randint(0, 4, (20,))
    per_view = [batch_hard_triplet(f, labels, margin=0.3) for f in feats]
    torch.testing.assert_close(
        batch_hard_triplet_views(feats, labels, 0.3), torch.stack(per_view).mean()
    )
    # a list of stacks of different widths counts every view alike
    other = torch.randn(2, 20, 3)
    both = [batch_hard_triplet(f, labels, margin=0.3) for f in [*feats, *other]]
    torch.testing.assert_close(
        batch_hard_triplet_views([feats, other], labels, 0.3), torch.stack(both).mean()
    )


def test_triplet_without_valid_anchor_is_zero():
    feats = torch.randn(2, 4, 3, requires_grad=True)
    loss = batch_hard_triplet_views(feats, torch.arange(4), 0.3)  # no positives at all
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.isfinite(feats.grad).all()


def _ranked_list_reference(x, labels, alpha, margin, t):
    """One view: the authors' weighted ranked-list loss, anchor by anchor, from its formula."""
    x = x / x.norm(dim=1, keepdim=True)
    total = 0.0
    n = len(labels)
    for i in range(n):
        lp, ln_num, ln_den, n_pos = 0.0, 0.0, 0.0, 0
        for j in range(n):
            d = math.sqrt(max(float(((x[i] - x[j]) ** 2).sum()), 1e-12))
            if j != i and labels[j] == labels[i]:
                n_pos += 1
                lp += max(0.0, d - (alpha - margin))
            elif labels[j] != labels[i] and d < alpha:
                w = math.exp(t * (alpha - d))
                ln_num += w * (alpha - d)
                ln_den += w
        total += lp / (n_pos + 1e-5) + ln_num / (ln_den + 1e-5)
    return total / n


def test_ranked_list_equals_the_per_anchor_formula():
    torch.manual_seed(1)
    feats = torch.randn(2, 16, 4)
    labels = torch.randint(0, 3, (16,))
    for alpha, margin, t in [(2.2, 0.9, 1.0), (1.0, 0.4, 2.0)]:
        want = sum(_ranked_list_reference(f, labels, alpha, margin, t) for f in feats) / 2
        got = ranked_list_views(feats, labels, alpha, margin, t)
        assert math.isclose(float(got), want, rel_tol=1e-5), (alpha, got, want)


def test_ranked_list_gradient_pulls_positives_and_pushes_negatives():
    torch.manual_seed(2)
    x = torch.randn(1, 8, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    loss = ranked_list_views(x, labels, alpha=1.2, margin=0.9)
    loss.backward()
    with torch.no_grad():
        moved = x - 0.1 * x.grad
    assert float(ranked_list_views(moved, labels, alpha=1.2, margin=0.9)) < float(loss.detach())
