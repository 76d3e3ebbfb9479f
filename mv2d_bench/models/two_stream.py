"""One forward computation, two gradient streams: ``two_stream(fn, x, *params)``.

Returns ``fn(x, *params)`` twice (equal values, computed once). Gradients that reach the first
copy flow to ``x`` and to ``params``; gradients that reach the second flow to ``x`` only - as if
the second copy had been computed with detached parameters, but without computing it again.
The MVC fusions use it for the parts every view subset shares (the relation-lowrank view and
pair terms): the task's rows train the fusion, the distillation terms' rows reach only the
representations (``model.distill_through_heads = false``).

The backward pass asks autograd for the first stream's gradient with respect to the input and
the parameters, and for the second's with respect to the input only (autograd then skips the
parameter-gradient products). ``fn`` must not draw random numbers (it is run once, in forward).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class _TwoStream(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn: Callable[..., Tensor], x: Tensor, *params: Tensor):
        with torch.enable_grad():
            xs = x.detach().requires_grad_(x.requires_grad)
            ps = [p.detach().requires_grad_(p.requires_grad) for p in params]
            y = fn(xs, *ps)
        ctx.graph = (y, xs, ps)
        ctx.set_materialize_grads(False)
        out = y.detach()
        return out, out.clone()

    @staticmethod
    def backward(ctx, live: Tensor | None, frozen: Tensor | None):
        y, xs, ps = ctx.graph  # kept (and retained) while the outer graph lives
        want = [p for p in ps if p.requires_grad]
        grads: dict[int, Tensor | None] = {}
        dx = None
        if live is not None and (xs.requires_grad or want):
            inputs = ([xs] if xs.requires_grad else []) + want
            got = torch.autograd.grad(y, inputs, live, retain_graph=True, allow_unused=True)
            if xs.requires_grad:
                dx, got = got[0], got[1:]
            grads = {id(p): g for p, g in zip(want, got, strict=True)}
        if frozen is not None and xs.requires_grad:
            (df,) = torch.autograd.grad(y, [xs], frozen, retain_graph=True, allow_unused=True)
            if df is not None:
                dx = df if dx is None else dx + df
        return (None, dx, *(grads.get(id(p)) for p in ps))


def two_stream(fn: Callable[..., Tensor], x: Tensor, *params: Tensor) -> tuple[Tensor, Tensor]:
    """(live, frozen) copies of ``fn(x, *params)`` (see the module docstring)."""
    if not torch.is_grad_enabled():
        y = fn(x, *params)
        return y, y
    return _TwoStream.apply(fn, x, *params)
