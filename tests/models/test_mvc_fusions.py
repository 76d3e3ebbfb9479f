"""The MVC fusions (model.fusion): K subsets in one call equal K separate calls; frozen rows have
the live rows' values but send gradient to the representations only; mean and concat against a
direct computation of their formulas."""

from __future__ import annotations

import pytest
import torch

from mv2d_bench.models.mvc_fusion import FUSIONS, build_fusion, fuse_views

B, D, C = 8, 6, 3


def _fusion(name, n, seed=0):
    torch.manual_seed(seed)
    return build_fusion(name, n, D, C, hidden=5, dropout=0.0, rank=4)


def _rows(n):
    rows = torch.ones(n + 1, B, n)
    rows[1:] -= torch.eye(n)[:, None, :]
    rows[0, 0] = torch.tensor([1.0] + [0.0] * (n - 1))  # item 0 of row 0: a single view
    return rows


@pytest.mark.parametrize("name", list(FUSIONS))
@pytest.mark.parametrize("n", [2, 4])
def test_batched_rows_equal_separate_calls(name, n):
    fusion = _fusion(name, n).eval()
    reps, rows = torch.randn(B, n, D), _rows(n)
    with torch.no_grad():
        together = fusion(reps, rows, live=n + 1).logits
        for k in range(n + 1):
            alone = fusion(reps, rows[k : k + 1], live=1).logits[0]
            torch.testing.assert_close(together[k], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(FUSIONS))
def test_frozen_rows_train_only_the_representations(name):
    n = 3
    fusion = _fusion(name, n).train()
    reps = torch.randn(B, n, D, requires_grad=True)
    rows = _rows(n)
    g = torch.randn(n + 1, B, C)
    torch.manual_seed(1)
    live = fusion(reps, rows, live=n + 1).logits
    torch.manual_seed(1)
    frozen = fusion(reps, rows, live=1).logits
    torch.testing.assert_close(frozen, live, rtol=1e-5, atol=1e-6)  # same values, same noise
    (frozen[1:] * g[1:]).sum().backward()
    assert reps.grad.abs().max() > 0
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in fusion.parameters())


def test_mean_and_concat_against_their_formulas():
    n = 3
    reps, rows = torch.randn(B, n, D), _rows(n)
    mean = _fusion("mean", n).eval()
    concat = _fusion("concat", n).eval()
    m, c = mean.classifier, concat.classifier
    with torch.no_grad():
        got_m = mean(reps, rows, live=n + 1).logits
        got_c = concat(reps, rows, live=n + 1).logits
        for k in range(n + 1):
            for b in range(B):
                keep = rows[k, b].bool()
                x = reps[b, keep].mean(0)
                want = torch.relu(x @ m.w1 + m.b1) @ m.w2 + m.b2
                torch.testing.assert_close(got_m[k, b], want, rtol=1e-5, atol=1e-6)
                cat = (reps[b] * rows[k, b, :, None]).reshape(-1)  # absent views zero
                want = torch.relu(cat @ c.w1.reshape(n * D, -1) + c.b1) @ c.w2 + c.b2
                torch.testing.assert_close(got_c[k, b], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(FUSIONS))
def test_fuse_views_rows_and_single_view(name):
    fusion = _fusion(name, 3).eval()
    reps = torch.randn(B, 3, D)
    with torch.no_grad():
        out = fuse_views(fusion, reps, loo=True, split=True)
        assert out.fused.shape == (B, C) and len(out.loo) == 3
        torch.testing.assert_close(out.fused_for_objective, out.fused)
        alone = fuse_views(fusion, reps)
        torch.testing.assert_close(alone.fused, out.fused)
        assert alone.loo is None
    single = _fusion(name, 1).eval()
    with torch.no_grad():
        out = fuse_views(single, torch.randn(B, 1, D), loo=True)
    assert out.loo is None and out.fused.shape == (B, C)
