"""two_stream: one forward, two copies; the second's gradient reaches the input only."""

from __future__ import annotations

import torch

from mv2d_bench.models.two_stream import two_stream


def _fn(x, w, b):
    return torch.relu(x @ w + b) * (x @ w)


def test_values_and_gradients_of_both_streams():
    torch.manual_seed(0)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    live, frozen = two_stream(_fn, x, w, b)
    want = _fn(x, w, b)
    torch.testing.assert_close(live, want)
    torch.testing.assert_close(frozen, want)
    g1, g2 = torch.randn_like(want), torch.randn_like(want)
    ((live * g1).sum() + (frozen * g2).sum()).backward(retain_graph=True)
    got = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    # reference: the live copy with the parameters, the frozen one with detached parameters
    ((_fn(x, w, b) * g1).sum() + (_fn(x, w.detach(), b.detach()) * g2).sum()).backward()
    for a, r in zip(got, (x.grad, w.grad, b.grad), strict=True):
        torch.testing.assert_close(a, r)
    # a second backward through the same graph works (retain_graph above)
    for t in (x, w, b):
        t.grad = None
    (frozen * g2).sum().backward()
    assert w.grad is None and b.grad is None and x.grad.abs().max() > 0
    assert torch.autograd.gradcheck(lambda x, w, b: two_stream(_fn, x, w, b)[0], (x, w, b))
