"""The batched per-view layers compute exactly what the per-view torch.nn modules compute:
outputs, gradients and BatchNorm running statistics (the encoders also in training mode)."""

from __future__ import annotations

import torch
from torch import nn

from mv2d_bench.models.bottleneck import GaussianBottleneck
from mv2d_bench.models.perview import ViewEncoders, ViewGaussianBottleneck, ViewLinear

DIMS = [11, 4, 7]


def test_view_linear_equals_n_linears_outputs_and_gradients():
    torch.manual_seed(0)
    layer = ViewLinear(3, 5, 4)
    mods = layer.to_modules()
    x = torch.randn(3, 6, 5, requires_grad=True)
    y = layer(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    xs = x.detach().clone().requires_grad_()
    want = torch.stack([m(xs[v]) for v, m in enumerate(mods)])
    (want * g).sum().backward()
    torch.testing.assert_close(y, want)
    torch.testing.assert_close(x.grad, xs.grad)
    for v, m in enumerate(mods):
        torch.testing.assert_close(layer.weight.grad[v], m.weight.grad.t())
        torch.testing.assert_close(layer.bias.grad[v, 0], m.bias.grad)
    # a strided (B, n, in) -> (n, B, in) view gives the same result as a contiguous copy
    xt = torch.randn(6, 3, 5)
    torch.testing.assert_close(layer(xt.transpose(0, 1)), layer(xt.transpose(0, 1).contiguous()))


def _reference_encoders(enc: ViewEncoders) -> list[nn.Sequential]:
    """MvNNcor's per-view nn.Sequential(Linear, BN, ReLU, Dropout, Linear, BN, ReLU)."""
    firsts = enc.first.to_modules()
    norms = [bn.to_modules() for bn in enc.norms]
    later = [layer.to_modules() for layer in enc.layers]
    out = []
    for v in range(enc.n_views):
        mods = [firsts[v], norms[0][v], nn.ReLU()]
        for k, layer in enumerate(later):
            mods += [nn.Dropout(enc.drop.p), layer[v], norms[k + 1][v], nn.ReLU()]
        out.append(nn.Sequential(*mods))
    return out


def test_encoders_equal_per_view_modules_in_training_and_evaluation():
    torch.manual_seed(1)
    enc = ViewEncoders(DIMS, [8, 6, 5], dropout=0.0)
    refs = _reference_encoders(enc)
    views = [torch.randn(10, d, requires_grad=True) for d in DIMS]
    copies = [x.detach().clone().requires_grad_() for x in views]
    got = enc.train()(views)  # batch statistics
    want = torch.stack([r.train()(x) for r, x in zip(refs, copies, strict=True)], 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(got)
    (got * g).sum().backward()
    (want * g).sum().backward()
    # gradients: float32's default tolerance (atol 1e-5), as in the other tests here; the batched
    # and per-view products sum in different orders, and how far that moves a gradient element
    # depends on the CPU's BLAS kernels (AMD EPYC: 1.9e-6 on an element of 0.04)
    for x, c in zip(views, copies, strict=True):
        torch.testing.assert_close(x.grad, c.grad)
    w_ref = refs[1][4].weight.grad  # view 1, second Linear
    torch.testing.assert_close(enc.layers[0].weight.grad[1], w_ref.t())
    # running statistics moved exactly as the per-view BatchNorms'
    for k, bn in enumerate(enc.norms):
        per_view = bn.to_modules()
        for v, r in enumerate(refs):
            ref_bn = r[4 * k + 1]
            torch.testing.assert_close(per_view[v].running_var, ref_bn.running_var)
    with torch.no_grad():
        got = enc.eval()(views)
        want = torch.stack([r.eval()(x) for r, x in zip(refs, views, strict=True)], 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_gaussian_bottlenecks_equal_per_view_modules():
    torch.manual_seed(2)
    batched = ViewGaussianBottleneck(3, 6, 4, hidden=5, min_std=1e-3).eval()
    refs = []
    for v in range(3):
        ref = GaussianBottleneck(6, 4, hidden=5, min_std=1e-3).eval()
        hid, out = batched.hidden.to_modules()[v], batched.out.to_modules()[v]
        ref.net[0].load_state_dict(hid.state_dict())
        ref.net[2].load_state_dict(out.state_dict())
        refs.append(ref)
    v = torch.randn(3, 7, 6, requires_grad=True)
    z, mean, std = batched(v)
    for i, ref in enumerate(refs):
        rz, rm, rs = ref(v[i])
        torch.testing.assert_close(mean[i], rm)
        torch.testing.assert_close(std[i], rs)
        torch.testing.assert_close(z[i], rz)
    batched.train()
    torch.manual_seed(3)
    z, mean, std = batched(v)
    assert not torch.equal(z, mean) and (std > 0).all()
