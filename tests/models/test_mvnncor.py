"""MvNNcor with bottlenecks: ViewOutputs shapes, leave-one-out only when asked, relation fuse."""

from __future__ import annotations

import pytest
import torch

from mv2d_bench.models.fusion import LeaveOneOutFusion
from mv2d_bench.models.mvnncor import FastDropout, MvNNcor, RelationFuse

DIMS = [240, 76, 216, 47, 64, 6]  # Hand


def _views(batch=16, dims=DIMS, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g) for d in dims]


def test_view_outputs_shapes_with_bottleneck():
    torch.manual_seed(0)
    model = MvNNcor(DIMS, 10, z_dim=32).eval()
    out = model(_views(), needs={"loo_logits"})
    assert out.n_views == 6
    assert [tuple(v.shape) for v in out.obs] == [(16, 256)] * 6
    assert [tuple(v.shape) for v in out.obs_logits] == [(16, 10)] * 6
    for name in ("rep", "rep_mean", "rep_std"):
        assert [tuple(t.shape) for t in getattr(out, name)] == [(16, 32)] * 6
    assert [tuple(t.shape) for t in out.rep_logits] == [(16, 10)] * 6
    assert tuple(out.fused_logits.shape) == (16, 10)
    assert [tuple(t.shape) for t in out.loo_logits] == [(16, 10)] * 6
    assert all(torch.equal(z, m) for z, m in zip(out.rep, out.rep_mean, strict=True))


def test_loo_logits_only_when_needed_and_fuse_called_once():
    torch.manual_seed(0)
    model = MvNNcor(DIMS, 10, z_dim=16).eval()
    calls = []
    model.fusion.fuse.register_forward_hook(
        lambda m, args, out: calls.append((args[0].shape, args[1].shape))
    )
    out = model(_views(), needs={"obs_logits", "rep_logits"})
    assert out.loo_logits is None and out.fused_logits is not None
    assert calls == [(torch.Size([1, 16, 6, 16]), torch.Size([1, 16, 6]))]  # all views only
    out = model(_views(), needs={"loo_logits"})
    assert len(out.loo_logits) == 6
    # all n + 1 subsets in ONE call; the reps are broadcast, not copied K times
    assert calls[1] == (torch.Size([1, 16, 6, 16]), torch.Size([7, 16, 6]))
    # the fused prediction does not depend on whether leave-one-out was asked for
    again = model(_views(), needs=set())
    torch.testing.assert_close(out.fused_logits, again.fused_logits)


def test_no_bottleneck_switch_uses_observations():
    torch.manual_seed(0)
    model = MvNNcor(DIMS, 10, bottleneck=False).eval()
    out = model(_views(), needs={"loo_logits"})
    assert out.rep is out.obs and out.rep_logits is out.obs_logits
    assert out.rep_mean is None and out.rep_std is None
    assert not hasattr(model, "bottlenecks")
    assert tuple(out.fused_logits.shape) == (16, 10)


def test_leave_one_out_logits_ignore_the_left_out_view():
    torch.manual_seed(0)
    model = MvNNcor([5, 7, 3, 4], 3, z_dim=8).eval()
    views = _views(12, [5, 7, 3, 4])
    changed = list(views)
    changed[2] = torch.randn(12, 3) * 5
    a = model(views, needs={"loo_logits"})
    b = model(changed, needs={"loo_logits"})
    torch.testing.assert_close(a.loo_logits[2], b.loo_logits[2])  # view 2 left out: unchanged
    for i in (0, 1, 3):
        assert not torch.allclose(a.loo_logits[i], b.loo_logits[i])
    assert not torch.allclose(a.fused_logits, b.fused_logits)


def _fuse_reference(fuse: RelationFuse, reps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Straightforward per-subset, per-view, per-pair loops of the documented formula."""
    K, B, n, _ = reps.shape
    alpha = torch.softmax(fuse.view_logits, 0)
    out = torch.zeros(K, B, fuse.s.out_features)
    for k in range(K):
        for b in range(B):
            num, den = 0.0, 0.0
            for i in range(n):
                if weights[k, b, i] == 0:
                    continue
                f_i = reps[k, b, i]
                others = [j for j in range(n) if j != i and weights[k, b, j] != 0]
                rel = torch.zeros(fuse.u.out_features)
                if others:
                    pairs = [torch.relu(fuse.u(f_i) * fuse.v(reps[k, b, j])) for j in others]
                    rel = sum(pairs) / len(others)
                logit = fuse.s(torch.relu(fuse.a(f_i))) + fuse.r(rel)
                num = num + alpha[i] * logit
                den = den + alpha[i]
            out[k, b] = num / den
    return out


def test_relation_fuse_matches_per_pair_reference_for_any_subsets():
    torch.manual_seed(3)
    fuse = RelationFuse(4, 6, 3, rank=5, hidden=7, dropout=0.0).eval()
    with torch.no_grad():
        fuse.view_logits.copy_(torch.randn(4))
    reps = torch.randn(3, 5, 4, 6)
    weights = (torch.rand(3, 5, 4) > 0.4).float()
    weights[:, :, 0] = 1.0  # at least one view per subset
    weights[0, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # a single view: no relation term
    with torch.no_grad():
        torch.testing.assert_close(fuse(reps, weights), _fuse_reference(fuse, reps, weights))


def test_relation_fuse_broadcast_reps_equal_a_k_fold_copy():
    torch.manual_seed(4)
    fuse = RelationFuse(3, 8, 4, dropout=0.0).eval()
    base = torch.randn(1, 6, 3, 8)
    weights = torch.ones(4, 6, 3)
    weights[1:, :, :] = 1 - torch.eye(3)[:, None, :]
    copied = base.expand(4, 6, 3, 8).contiguous()
    torch.testing.assert_close(fuse(base, weights), fuse(copied, weights))


def test_relation_fuse_in_leave_one_out_equals_separate_subset_calls():
    torch.manual_seed(5)
    fuse = RelationFuse(3, 4, 2, dropout=0.0).eval()
    reps = [torch.randn(7, 4) for _ in range(3)]
    fused, loo = LeaveOneOutFusion(fuse)(reps)
    stacked = torch.stack(reps, 1)[None]
    for i in range(3):
        w = torch.ones(1, 7, 3)
        w[..., i] = 0
        torch.testing.assert_close(loo[i], fuse(stacked, w)[0])
    torch.testing.assert_close(fused, fuse(stacked, torch.ones(1, 7, 3))[0])


def test_fast_dropout_is_inverted_dropout():
    d = FastDropout(0.3).train()
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = d(x)
    zero = float((y == 0).float().mean())
    assert abs(zero - 0.3) < 0.005
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    assert torch.equal(d.eval()(x), x)
    with pytest.raises(ValueError, match="dropout"):
        FastDropout(1.0)


def test_wrong_number_of_views_is_an_error():
    model = MvNNcor([3, 4], 2)
    with pytest.raises(ValueError, match="got 1 views; built for 2"):
        model([torch.randn(4, 3)])
