"""Segmentation losses against closed forms: focal (gamma 0 = CE; a hand-computed value) and
Lovasz-softmax (on one-hot probabilities it is mean_c (1 - IoU_c))."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mv2d_bench.models.seg.losses import (
    cross_entropy,
    focal_loss,
    lovasz_from_probabilities,
    lovasz_softmax,
)


def test_focal_gamma_zero_is_cross_entropy_and_masks_points():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g)
    target = torch.randint(0, 7, (50,), generator=g)
    mask = torch.rand(50, generator=g) > 0.3
    ce = F.cross_entropy(logits[mask], target[mask])
    torch.testing.assert_close(focal_loss(logits, target, mask, gamma=0.0), ce)
    torch.testing.assert_close(cross_entropy(logits, target, mask), ce)


def test_focal_closed_form():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # p_t = 3/4 and 1/2
    target = torch.tensor([0, 1])
    expected = -((0.25**2) * math.log(0.75) + (0.5**2) * math.log(0.5)) / 2
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)


def test_lovasz_on_one_hot_probabilities_is_the_jaccard_loss():
    g = torch.Generator().manual_seed(3)
    target = torch.randint(0, 5, (200,), generator=g)
    target[target == 4] = 3  # class 4 absent from the targets: not averaged
    pred = torch.where(
        torch.rand(200, generator=g) < 0.6, target, torch.randint(0, 5, (200,), generator=g)
    )
    probs = F.one_hot(pred, 5).double()
    ious = []
    for c in torch.unique(target).tolist():
        inter = ((pred == c) & (target == c)).sum().item()
        union = ((pred == c) | (target == c)).sum().item()
        ious.append(inter / union)
    expected = sum(1 - i for i in ious) / len(ious)
    assert lovasz_from_probabilities(probs, target).item() == pytest.approx(expected, rel=1e-12)


def test_lovasz_is_zero_for_perfect_predictions_and_has_a_gradient():
    target = torch.tensor([0, 1, 2, 1])
    assert lovasz_from_probabilities(F.one_hot(target, 3).double(), target).item() == 0.0
    logits = torch.randn(4, 3, requires_grad=True)
    loss = lovasz_softmax(logits, target, torch.tensor([True, True, False, True]))
    loss.backward()
    assert logits.grad[2].abs().sum() == 0 and logits.grad.abs().sum() > 0


def test_no_valid_point_gives_zero():
    logits = torch.randn(3, 4, requires_grad=True)
    mask = torch.zeros(3, dtype=torch.bool)
    target = torch.zeros(3, dtype=torch.long)
    for f in (cross_entropy, focal_loss, lovasz_softmax):
        value = f(logits, target, mask)
        assert value.item() == 0.0 and value.requires_grad
