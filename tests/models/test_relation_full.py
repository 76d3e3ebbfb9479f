"""relation-full (MvNNcor's f_psi and shared classifier) against a per-pair loop reference built
from torch.nn modules exactly as MvNNcor's network calls them: outputs, gradients and BatchNorm
running statistics; any view subset; live and frozen parameter streams."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mv2d_bench.models.mvc_fusion import RelationFullFusion
from mv2d_bench.models.mvc_fusion.view_weights import LossViewWeights
from mv2d_bench.models.pair_bilinear import from_linear_weight, linear_weight, pair_bilinear

B, D, H, C = 9, 5, 7, 4


def _bn(src, channels):
    bn = nn.BatchNorm1d(channels)
    with torch.no_grad():
        bn.weight.copy_(src.weight)
        bn.bias.copy_(src.bias)
        bn.running_mean.copy_(src.running_mean)
        bn.running_var.copy_(src.running_var)
    return bn


class Reference(nn.Module):
    """MvNNcor's RelationBlock_Out + classifier_out, called pair by pair and view by view."""

    def __init__(self, fusion: RelationFullFusion):
        super().__init__()
        n, d = fusion.n_views, fusion.dim
        self.n = n
        self.psi = nn.Linear(d * d, d)
        self.psi_bn = _bn(fusion.psi_bn, d)
        lin1 = nn.Linear(n * d, fusion.hidden)
        lin2 = nn.Linear(fusion.hidden, fusion.cls_weight2.shape[1])
        with torch.no_grad():
            self.psi.weight.copy_(linear_weight(fusion.psi_weight))
            self.psi.bias.copy_(fusion.psi_bias)
            lin1.weight.copy_(torch.cat([fusion.cls_weight1[s].t() for s in range(n)], dim=1))
            lin1.bias.copy_(fusion.cls_bias1)
            lin2.weight.copy_(fusion.cls_weight2.t())
            lin2.bias.copy_(fusion.cls_bias2)
        self.classifier = nn.Sequential(
            lin1,
            _bn(fusion.cls_bn1, fusion.hidden),
            nn.ReLU(),
            lin2,
            _bn(fusion.cls_bn2, lin2.out_features),
        )

    def relations(self, f):
        rel = []
        for i in range(self.n):
            row = []
            for j in range(self.n):  # all n^2 pairs, i == j included (MvNNcor pops it after)
                outer = torch.bmm(f[i].unsqueeze(2), f[j].unsqueeze(1)).reshape(f[i].shape[0], -1)
                row.append(torch.relu(self.psi_bn(self.psi(outer))))
            rel.append(row)
        return rel

    def view_logits(self, f, rel, subset, classifier):
        out = []
        for k in range(self.n):
            slots = [
                rel[k][j] if j in subset else torch.zeros_like(rel[k][j])
                for j in range(self.n)
                if j != k
            ]
            out.append(classifier(torch.cat([f[k], *slots], dim=1)))
        return torch.stack(out, 1)  # (B, n, C)


def _scratch_stats(module):
    """``module`` with its own parameters but a throw-away copy of its buffers."""
    params = dict(module.named_parameters())
    buffers = {k: b.clone() for k, b in module.named_buffers()}
    return lambda x: torch.func.functional_call(module, {**params, **buffers}, (x,))


def _fused(view_logits, base, subset):
    w = torch.tensor([base[v] if v in subset else 0.0 for v in range(len(base))])
    return (view_logits * (w / w.sum())[None, :, None]).sum(1)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_training_forward_gradients_and_running_stats_equal_the_pair_loop(n):
    torch.manual_seed(n)
    fusion = RelationFullFusion(n, D, C, hidden=H, dropout=0.0, init_std=0.3).train()
    ref = Reference(fusion).train()
    reps = torch.randn(B, n, D, requires_grad=True)
    f = [reps[:, i] for i in range(n)]
    subsets = [set(range(n))] + [set(range(n)) - {i} for i in range(n)]
    weights = torch.tensor([[1.0 if v in s else 0.0 for v in range(n)] for s in subsets])
    weights = weights[:, None, :].expand(len(subsets), B, n)
    out = fusion(reps, weights, live=len(subsets))
    base = torch.softmax(fusion.weighting.logits, 0).tolist()

    rel = ref.relations(f)
    want_views, want_fused = [], []
    for r, s in enumerate(subsets):  # LOO rows: own BN batch stats, running stats untouched
        v = ref.view_logits(f, rel, s, ref.classifier if r == 0 else _scratch_stats(ref.classifier))
        want_views.append(v)
        want_fused.append(_fused(v, base, s))
    torch.testing.assert_close(out.view_logits, torch.stack(want_views), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.logits, torch.stack(want_fused), rtol=1e-4, atol=1e-5)

    # running statistics: n^2 pair calls, then n classifier calls of the all-view row
    torch.testing.assert_close(fusion.psi_bn.running_mean, ref.psi_bn.running_mean)
    torch.testing.assert_close(fusion.psi_bn.running_var, ref.psi_bn.running_var)
    torch.testing.assert_close(fusion.cls_bn1.running_var, ref.classifier[1].running_var)
    torch.testing.assert_close(fusion.cls_bn2.running_mean, ref.classifier[4].running_mean)

    g = torch.randn_like(out.logits)
    (out.logits * g).sum().backward()
    got_reps = reps.grad.clone()
    reps.grad = None
    (torch.stack(want_fused) * g).sum().backward()
    torch.testing.assert_close(got_reps, reps.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        fusion.psi_weight.grad, from_linear_weight(ref.psi.weight.grad), rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(fusion.psi_bias.grad, ref.psi.bias.grad, rtol=1e-4, atol=1e-5)
    w1 = ref.classifier[0].weight.grad
    torch.testing.assert_close(
        fusion.cls_weight1.grad, w1.t().reshape(n, D, H), rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(
        fusion.psi_bn.weight.grad, ref.psi_bn.weight.grad, rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(
        fusion.cls_bn2.bias.grad, ref.classifier[4].bias.grad, rtol=1e-4, atol=1e-5
    )


def test_evaluation_uses_running_statistics_like_the_reference():
    torch.manual_seed(7)
    fusion = RelationFullFusion(3, D, C, hidden=H, dropout=0.5, init_std=0.3)
    for _ in range(3):  # move the running statistics
        fusion.train()(torch.randn(B, 3, D), torch.ones(1, B, 3), live=1)
    fusion.eval()
    ref = Reference(fusion).eval()
    reps = torch.randn(B, 3, D)
    with torch.no_grad():
        got = fusion(reps, torch.ones(1, B, 3), live=1)
        f = [reps[:, i] for i in range(3)]
        want = ref.view_logits(f, ref.relations(f), {0, 1, 2}, ref.classifier)
    torch.testing.assert_close(got.view_logits[0], want, rtol=1e-4, atol=1e-5)


def test_frozen_rows_have_the_same_values_and_train_no_parameter():
    torch.manual_seed(2)
    n = 3
    weighting = LossViewWeights(n)
    fusion = RelationFullFusion(n, D, C, hidden=H, dropout=0.0, weighting=weighting, init_std=0.3)
    reps = torch.randn(B, n, D, requires_grad=True)
    rows = torch.ones(n + 1, B, n)
    rows[1:] -= torch.eye(n)[:, None, :]
    g = torch.randn(n + 1, B, C)

    def grads(live):
        fusion.zero_grad(set_to_none=True)
        reps.grad = None
        out = fusion(reps, rows, live=live)
        if live == 1:  # the frozen rows' loss must not reach a parameter
            (out.logits[1:] * g[1:]).sum().backward(retain_graph=True)
            assert all(p.grad is None or p.grad.abs().max() == 0 for p in fusion.parameters())
            assert reps.grad is not None and reps.grad.abs().max() > 0
            fusion.zero_grad(set_to_none=True)
            reps.grad = None
        (out.logits * g).sum().backward()
        return (
            out.logits.detach(),
            reps.grad.clone(),
            {k: p.grad.clone() for k, p in fusion.named_parameters()},
        )

    live_out, live_reps, _ = grads(n + 1)
    frozen_out, frozen_reps, frozen_params = grads(1)
    torch.testing.assert_close(frozen_out, live_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(frozen_reps, live_reps, rtol=1e-4, atol=1e-6)  # reps: all rows
    fusion.zero_grad(set_to_none=True)
    (fusion(reps, rows[:1], live=1).logits * g[:1]).sum().backward()
    for k, p in fusion.named_parameters():  # parameters: the live row only
        torch.testing.assert_close(frozen_params[k], p.grad, rtol=1e-4, atol=1e-6, msg=k)


def test_pair_bilinear_equals_the_flattened_outer_product_linear():
    torch.manual_seed(0)
    lin = nn.Linear(D * D, 3, bias=False)
    feats = torch.randn(4, 3, D, requires_grad=True)
    weight = from_linear_weight(lin.weight.detach()).requires_grad_()
    got = pair_bilinear(feats, weight)
    outer = feats[:, :, None, :, None] * feats[:, None, :, None, :]  # [b, i, j, a, c]
    want = lin(outer.reshape(4, 3, 3, D * D))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(linear_weight(weight), lin.weight)
    g = torch.randn_like(got)
    (got * g).sum().backward()
    gf, gw = feats.grad.clone(), weight.grad.clone()
    feats.grad = None
    (want * g).sum().backward()
    torch.testing.assert_close(gf, feats.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gw, from_linear_weight(lin.weight.grad), rtol=1e-4, atol=1e-6)
    x64 = feats.double().detach().requires_grad_()
    w64 = weight.double().detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: pair_bilinear(x, w), (x64, w64))
    # two streams: the first is the ordinary function; the second reaches the features only
    assert torch.autograd.gradcheck(lambda x, w: pair_bilinear(x, w, 2)[0], (x64, w64))
    fixed = w64.detach()
    assert torch.autograd.gradcheck(lambda x: pair_bilinear(x, fixed, 2)[1], (x64,))
    live, frozen = pair_bilinear(x64, w64, 2)
    frozen.sum().backward()
    assert w64.grad is None and x64.grad.abs().max() > 0
