"""multiview-ib (the MV2D paper's MVC network): ViewOutputs shapes, leave-one-out only when
asked and in one fusion call, the no-bottleneck switch, and the relation-lowrank fusion against a
per-subset, per-view, per-pair loop of its documented formula."""

from __future__ import annotations

import pytest
import torch

from mv2d_bench.models.multiview_ib import MultiViewIB
from mv2d_bench.models.mvc_fusion import RelationLowRankFusion

DIMS = [240, 76, 216, 47, 64, 6]  # Hand
FUSIONS = ["relation-lowrank", "relation-full", "concat", "mean"]


def _views(batch=16, dims=DIMS, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g) for d in dims]


@pytest.mark.parametrize("fusion", FUSIONS)
def test_view_outputs_shapes_with_bottleneck(fusion):
    torch.manual_seed(0)
    model = MultiViewIB(DIMS, 10, z_dim=32, fusion=fusion).eval()
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
    # grad is enabled, so the objective's copy of the fused row is computed in a second,
    # detached-parameter stream: the same values up to float rounding (bitwise on some BLAS
    # kernels, not on all: AMD EPYC differs in the last bits for `mean`)
    torch.testing.assert_close(out.task_fused_logits, out.fused_logits)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_loo_logits_only_when_needed_and_fusion_called_once(fusion):
    torch.manual_seed(0)
    model = MultiViewIB(DIMS, 10, z_dim=16, fusion=fusion).eval()
    calls = []
    model.fusion.register_forward_hook(
        lambda m, args, out: calls.append((tuple(args[0].shape), tuple(args[1].shape)))
    )
    with torch.no_grad():
        out = model(_views(), needs={"obs_logits", "rep_logits"})
        assert out.loo_logits is None and out.fused_logits is not None
        assert calls == [((16, 6, 16), (1, 16, 6))]  # all views only
        out = model(_views(), needs={"loo_logits"})
        assert len(out.loo_logits) == 6
        assert calls[1] == ((16, 6, 16), (7, 16, 6))  # all n + 1 subsets in ONE call
        again = model(_views(), needs=set())
        torch.testing.assert_close(out.fused_logits, again.fused_logits, rtol=1e-5, atol=1e-6)
    # with gradients: the fused row, its frozen copy for the objective, n leave-one-out rows
    out = model(_views(), needs={"fused_logits", "loo_logits"})
    assert calls[3] == ((16, 6, 16), (8, 16, 6))
    torch.testing.assert_close(out.fused_logits, out.task_fused_logits)


def test_no_bottleneck_switch_uses_observations():
    torch.manual_seed(0)
    model = MultiViewIB(DIMS, 10, bottleneck=False).eval()
    out = model(_views(), needs={"loo_logits"})
    assert out.rep is out.obs and out.rep_logits is out.obs_logits
    assert out.rep_mean is None and out.rep_std is None and out.task_rep_logits is None
    assert not hasattr(model, "bottlenecks")
    assert tuple(out.fused_logits.shape) == (16, 10)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_leave_one_out_logits_ignore_the_left_out_view(fusion):
    torch.manual_seed(0)
    model = MultiViewIB([5, 7, 3, 4], 3, z_dim=8, fusion=fusion).eval()
    views = _views(12, [5, 7, 3, 4])
    changed = list(views)
    changed[2] = torch.randn(12, 3) * 5
    a = model(views, needs={"loo_logits"})
    b = model(changed, needs={"loo_logits"})
    torch.testing.assert_close(a.loo_logits[2], b.loo_logits[2])  # view 2 left out: unchanged
    for i in (0, 1, 3):
        assert not torch.allclose(a.loo_logits[i], b.loo_logits[i])
    assert not torch.allclose(a.fused_logits, b.fused_logits)


def _lowrank_reference(fuse: RelationLowRankFusion, reps, weights):
    """Per-subset, per-item, per-view, per-pair loops of the documented formula."""
    h, r = fuse.hidden, fuse.rank
    a, u, v = fuse.a_uv[:, :h], fuse.a_uv[:, h : h + r], fuse.a_uv[:, h + r :]
    alpha = torch.softmax(fuse.weighting.logits, 0)
    K, B, n = weights.shape
    out = torch.zeros(K, B, fuse.s.shape[1])
    for k in range(K):
        for b in range(B):
            num, den = 0.0, 0.0
            for i in range(n):
                if weights[k, b, i] == 0:
                    continue
                f_i = reps[b, i]
                others = [j for j in range(n) if j != i and weights[k, b, j] != 0]
                rel = torch.zeros(r)
                if others:
                    rel = sum(torch.relu((f_i @ u) * (reps[b, j] @ v)) for j in others) / len(
                        others
                    )
                logit = torch.relu(f_i @ a + fuse.a_bias) @ fuse.s + fuse.s_bias + rel @ fuse.r
                num = num + alpha[i] * logit
                den = den + alpha[i]
            out[k, b] = num / den
    return out


def test_relation_lowrank_matches_per_pair_reference_for_any_subsets():
    torch.manual_seed(3)
    fuse = RelationLowRankFusion(4, 6, 3, rank=5, hidden=7, dropout=0.0).eval()
    with torch.no_grad():
        fuse.weighting.logits.copy_(torch.randn(4))
    reps = torch.randn(5, 4, 6)
    weights = (torch.rand(3, 5, 4) > 0.4).float()
    weights[:, :, 0] = 1.0  # at least one view per subset
    weights[0, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # a single view: no relation term
    with torch.no_grad():
        got = fuse(reps, weights, live=3).logits
        torch.testing.assert_close(got, _lowrank_reference(fuse, reps, weights))
        # frozen rows compute the same values
        torch.testing.assert_close(fuse(reps, weights, live=1).logits, got)


def test_wrong_number_of_views_is_an_error():
    model = MultiViewIB([3, 4], 2)
    with pytest.raises(ValueError, match="got 1 views; built for 2"):
        model([torch.randn(4, 3)])
