"""What the MV2D authors' released ReID code does, as options of this suite: their ranked-list rank
loss (against a per-anchor loop written from its definition), their deterministic bottleneck
2048-1000-500-512 with BatchNorm and their classifier on z, and their warm-up schedule."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("torchvision")

from mv2d_bench.harness.optim import lr_factor  # noqa: E402
from mv2d_bench.models.reid import DeterministicBottleneck, ReidNet, mlp_head  # noqa: E402
from mv2d_bench.models.reid_losses import ranked_list_loss  # noqa: E402


def ranked_list_reference(x, labels, sub, m=(0.9, 1.0), a=(2.2, 2.0), t=1.0):
    """One anchor at a time, Python floats: the loss of each anchor is, per modality group
    (same as the anchor's, other), the hinge of the positives' distances and the
    exp-weighted mean of alpha - d over the negatives closer than alpha."""
    n = len(labels)
    x = [[float(v) for v in row] for row in x]
    unit = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in x]

    def dist(i, j):
        sq = sum(p * p for p in unit[i]) + sum(q * q for q in unit[j])
        sq -= 2 * sum(p * q for p, q in zip(unit[i], unit[j], strict=True))
        return math.sqrt(max(sq, 1e-12))

    total = 0.0
    for i in range(n):
        for g in (0, 1):  # 0: same modality, 1: the other
            members = [j for j in range(n) if (sub[j] == sub[i]) == (g == 0)]
            pos = [dist(i, j) for j in members if labels[j] == labels[i] and j != i]
            total += sum(max(d + m[g] - a[g], 0.0) for d in pos) / (len(pos) + 1e-5)
            neg = [dist(i, j) for j in members if labels[j] != labels[i]]
            neg = [d for d in neg if d < a[g]]
            w = [math.exp(t * (a[g] - d)) for d in neg]
            total += sum(wi * (a[g] - d) for wi, d in zip(w, neg, strict=True)) / (sum(w) + 1e-5)
    return total / n


@pytest.mark.parametrize("seed", [0, 1])
def test_ranked_list_loss_matches_a_per_anchor_loop(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2])
    sub = torch.tensor([0] * 6 + [1] * 6)
    got = ranked_list_loss(x, labels, sub)
    want = ranked_list_reference(x.tolist(), labels.tolist(), sub.tolist())
    assert got.item() == pytest.approx(want, rel=1e-5)
    # other margins / thresholds / temperature reach the formula
    got2 = ranked_list_loss(x, labels, sub, (0.5, 0.7), (1.2, 1.4), 2.0)
    want2 = ranked_list_reference(x.tolist(), labels.tolist(), sub.tolist(),
                                  (0.5, 0.7), (1.2, 1.4), 2.0)  # fmt: skip
    assert got2.item() == pytest.approx(want2, rel=1e-5)
    # scale-free (L2-normalised first) and differentiable, weights included
    assert ranked_list_loss(3.0 * x, labels, sub).item() == pytest.approx(got.item(), rel=1e-6)
    x.requires_grad_(True)
    ranked_list_loss(x, labels, sub).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_deterministic_bottleneck_is_the_authors_mlp_with_batchnorm():
    b = DeterministicBottleneck(2048, 512, (1000, 500))
    linear = [
        (m.in_features, m.out_features) for m in b.modules() if isinstance(m, torch.nn.Linear)
    ]
    norms = [m.num_features for m in b.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert linear == [(2048, 1000), (1000, 500), (500, 512)] and norms == [1000, 500]
    b.train()
    v = torch.randn(6, 2048)
    z, mean, std = b(v)
    assert z.shape == (6, 512) and torch.equal(z, mean) and torch.equal(std, torch.zeros_like(z))
    b.eval()  # deterministic: the same z in both modes once BN uses its running statistics
    z1, _, _ = b(v)
    assert torch.equal(z1, b(v)[0])
    head = mlp_head(512, 395)
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout", "Linear"]
    assert head[0].out_features == 256 and head[3].p == 0.5 and head[2].negative_slope == 0.1
    net = ReidNet(5, backbone="resnet18", z_dim=16, hidden=(32, 24),
                  bottleneck_type="deterministic", rep_head="mlp")  # fmt: skip
    out = net(torch.rand(4, 3, 32, 16), torch.rand(4, 3, 32, 16))
    assert out["visible"].rep.shape == (4, 16) and torch.equal(out["visible"].rep_std, 0 * out[
        "visible"].rep)  # fmt: skip
    with pytest.raises(ValueError, match="bottleneck_type"):
        ReidNet(5, backbone="resnet18", bottleneck_type="stochastic")


def test_warmup_start_reproduces_the_authors_shifted_warmup():
    """Their WarmupMultiStepLR(milestones [210], gamma 0.1, warmup_factor 0.01, 10 iters) is
    stepped at the start of every epoch, so epoch e trains with its factor at e + 1: 0.109 first,
    1 from epoch 9, x0.1 from epoch 209. warmup_start = 0.109 over 9 epochs, milestone 209 is it."""

    def theirs(e):
        last = e + 1
        warm = 0.01 * (1 - last / 10) + last / 10 if last < 10 else 1.0
        return warm * 0.1 ** sum(1 for m in [210] if last >= m)

    ours = [lr_factor(e, [209], 0.1, 9, warmup_start=0.109) for e in range(600)]
    assert ours == pytest.approx([theirs(e) for e in range(600)], abs=1e-12)
    assert ours[0] == pytest.approx(0.109) and ours[9] == 1.0 and ours[209] == pytest.approx(0.1)
    # without warmup_start the ramp is (epoch + 1) / warmup, as before
    assert lr_factor(0, [], 0.1, 10) == pytest.approx(0.1)
