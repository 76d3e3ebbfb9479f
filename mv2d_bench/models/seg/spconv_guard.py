"""Running spconv 2.x on the CPU correctly: one torch thread around every call, backward included.

spconv's CPU gather/scatter kernels race when torch uses more than one intra-op thread: forward
and backward then give wrong, non-repeatable results in float32 and float64 alike (upstream
traveller59/spconv#679); with one thread they equal a dense ``F.conv3d`` exactly. Its backward
on the CPU also calls ``torch.cuda.current_stream()``, which fails without CUDA: ``ops``'
``get_current_stream`` is rebound to return 0 where CUDA is absent (:func:`patch_spconv`).

:class:`Guarded` wraps one spconv module (``SubMConv3d``, ``SparseConv3d``,
``SparseInverseConv3d`` ...). On CUDA it calls the module directly. On the CPU the call runs
through an autograd Function: its forward runs the module under :func:`one_thread` (building
the module's own graph on detached inputs), its backward differentiates that graph with
``torch.autograd.grad``, again under :func:`one_thread`, and hands the gradients of the input
features and of the module's parameters to the outer graph. So no spconv kernel, forward or
backward, ever sees more than one thread, whatever the caller's thread count, while everything
else in the network keeps all threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

_PATCHED = False


def patch_spconv() -> None:
    """Rebind ``spconv.pytorch.ops.get_current_stream`` to return 0 when CUDA is unavailable
    (spconv's CPU backward asks for a CUDA stream). Idempotent."""
    global _PATCHED
    if _PATCHED:
        return
    import spconv.pytorch.ops as ops

    original = ops.get_current_stream

    def get_current_stream() -> int:
        if torch.cuda.is_available():
            return original()
        return 0

    ops.get_current_stream = get_current_stream
    _PATCHED = True


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch runs with one intra-op thread inside; the caller's thread count is restored after
    (also after an error). Nested uses are fine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _GuardedCall(torch.autograd.Function):
    """forward(ctx, call, features, *params) -> output features (see :class:`Guarded`)."""

    @staticmethod
    def forward(ctx, call, features: Tensor, *params: Tensor) -> Tensor:  # type: ignore[override]
        with one_thread(), torch.enable_grad():
            inner = features.detach().requires_grad_(features.requires_grad)
            out = call.run(inner)
        ctx.call = call
        ctx.inner_in = inner
        ctx.inner_out = out.features
        ctx.params = params
        call.result = out
        return out.features.detach()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        wanted = [ctx.inner_in] if ctx.inner_in.requires_grad else []
        wanted += [p for p in ctx.params if p.requires_grad]
        grads: tuple[Tensor | None, ...] = ()
        if wanted and ctx.inner_out.requires_grad:
            with one_thread():
                grads = torch.autograd.grad(ctx.inner_out, wanted, grad, allow_unused=True)
        it = iter(grads)
        g_in = next(it, None) if ctx.inner_in.requires_grad else None
        g_params = [next(it, None) if p.requires_grad else None for p in ctx.params]
        ctx.call.result = None
        return (None, g_in, *g_params)


class _Call:
    """The spconv module and its input tensor, carried through the autograd Function."""

    def __init__(self, module: nn.Module, tensor: Any) -> None:
        self.module, self.tensor, self.result = module, tensor, None

    def run(self, features: Tensor):
        return self.module(self.tensor.replace_feature(features))


class Guarded(nn.Module):
    """One spconv module, called under a one-thread guard on the CPU, forward and backward.

    ``forward(x: SparseConvTensor) -> SparseConvTensor``; the parameters are the wrapped
    module's (``guarded.module.weight``), so state dicts keep spconv's layout.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        patch_spconv()
        self.module = module

    def forward(self, x):
        if x.features.is_cuda:
            return self.module(x)
        if not torch.is_grad_enabled():
            with one_thread():
                return self.module(x)
        call = _Call(self.module, x)
        params = [p for p in self.module.parameters()]
        features = _GuardedCall.apply(call, x.features, *params)
        out = call.result
        call.result = None
        return out.replace_feature(features)
