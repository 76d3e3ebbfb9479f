"""Leave-one-out fusion: one batched pass equals n separate forwards with one view removed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mv2d_bench.models.fusion import LeaveOneOutFusion, MeanFusion, subset_masks

B, D, C = 7, 4, 3


class AttentionFuse(nn.Module):
    """A fuse that is not a plain mean: masked softmax attention over the views."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(D, 1)
        self.head = nn.Linear(D, C)

    def forward(self, reps, weights):
        scores = self.score(reps).squeeze(-1).masked_fill(weights == 0, float("-inf"))
        attn = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a subset with no view -> 0
        return self.head((attn.unsqueeze(-1) * reps).sum(-2))


class CountingFuse(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, reps, weights):
        self.calls.append((tuple(reps.shape), tuple(weights.shape)))
        return self.inner(reps, weights)


def test_subset_masks_rows():
    want = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]], bool)
    np.testing.assert_array_equal(subset_masks(3).numpy(), want)
    present = torch.tensor([True, False, True])
    np.testing.assert_array_equal(subset_masks(3, present).numpy(), want & [1, 0, 1])
    per_item = torch.tensor([[True, True, False], [False, True, True]])
    got = subset_masks(3, per_item)
    assert got.shape == (4, 2, 3)
    for b in range(2):
        np.testing.assert_array_equal(got[:, b].numpy(), want & per_item[b].numpy())
    with pytest.raises(ValueError, match=r"present must have shape \(3,\) or \(B, 3\)"):
        subset_masks(3, torch.ones(4, dtype=torch.bool))


def make_present(kind: str, n: int, gen: torch.Generator):
    if kind == "none":
        return None
    if kind == "views":
        present = torch.ones(n, dtype=torch.bool)
        present[n - 1] = False
        return present
    present = torch.rand(B, n, generator=gen) < 0.6
    present[0] = True
    present[1] = False  # an item with no view at all
    present[2, :] = torch.arange(n) == 0  # an item with only view 0: its LOO_0 subset is empty
    return present


@pytest.mark.parametrize("fuse_kind", ["mean", "attention"])
@pytest.mark.parametrize("present_kind", ["none", "views", "items"])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_loo_equals_separate_forwards(n, present_kind, fuse_kind):
    torch.manual_seed(n)
    gen = torch.Generator().manual_seed(n)
    inner = MeanFusion(D, C, hidden=8) if fuse_kind == "mean" else AttentionFuse()
    fuse = CountingFuse(inner)
    fusion = LeaveOneOutFusion(fuse)
    reps = [torch.randn(B, D, generator=gen) for _ in range(n)]
    present = make_present(present_kind, n, gen)

    fused, loo = fusion(reps, present)
    assert fuse.calls == [((n + 1, B, n, D), (n + 1, B, n))]  # one batched call
    assert fused.shape == (B, C) and len(loo) == n
    assert torch.isfinite(fused).all() and all(torch.isfinite(x).all() for x in loo)

    alone, none = fusion(reps, present, loo=False)
    assert none is None and fuse.calls[-1][0] == (1, B, n, D)
    torch.testing.assert_close(alone, fused)
    for i in range(n):
        keep = [j for j in range(n) if j != i]
        sub_present = None if present is None else present[..., keep]
        separate, _ = fusion([reps[j] for j in keep], sub_present, loo=False)
        torch.testing.assert_close(loo[i], separate, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("present_kind", ["none", "items"])
def test_mean_fusion_against_numpy(present_kind):
    n = 3
    gen = torch.Generator().manual_seed(0)
    head = MeanFusion(D, C)
    reps = [torch.randn(B, D, generator=gen) for _ in range(n)]
    present = make_present(present_kind, n, gen)
    fused, loo = LeaveOneOutFusion(head)(reps, present)
    w = head.head.weight.detach().numpy()
    bias = head.head.bias.detach().numpy()
    stack = np.stack([r.numpy() for r in reps], 1)  # (B, n, D)
    have = np.ones((B, n), bool) if present is None else present.numpy()
    for b in range(B):
        for row, drop in [(fused, None)] + [(loo[i], i) for i in range(n)]:
            views = [j for j in range(n) if have[b, j] and j != drop]
            mean = stack[b, views].mean(0) if views else np.zeros(D)
            np.testing.assert_allclose(row[b].detach().numpy(), w @ mean + bias, atol=1e-5)


def test_empty_subsets_give_finite_gradients():
    reps = [torch.randn(B, D, requires_grad=True) for _ in range(2)]
    present = torch.zeros(B, 2, dtype=torch.bool)
    present[:, 0] = True  # view 1 missing everywhere: LOO_0 has no view
    fused, loo = LeaveOneOutFusion(MeanFusion(D, C))(reps, present)
    (fused.sum() + loo[0].sum() + loo[1].sum()).backward()
    assert torch.isfinite(reps[0].grad).all() and reps[0].grad.abs().max() > 0
    assert reps[1].grad.abs().max().item() == 0.0  # an absent view has no influence


def test_single_view_and_shape_errors():
    fusion = LeaveOneOutFusion(MeanFusion(D, C))
    x = torch.randn(B, D)
    fused, loo = fusion([x])
    assert loo is None
    torch.testing.assert_close(fused, fusion.fuse.head(x))
    with pytest.raises(ValueError, match="one shape"):
        fusion([x, torch.randn(B, D + 1)])
    with pytest.raises(ValueError, match="one per item"):
        fusion([x, x], torch.ones(B + 1, 2, dtype=torch.bool))
