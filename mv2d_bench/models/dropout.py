"""Inverted dropout with a cheap keep-mask.

``nn.Dropout`` draws one Bernoulli per element with ``bernoulli_``; on many CPUs that and
``torch.rand`` are scalar Mersenne-Twister code, about 10 ns per element, which made dropout the
largest single cost of a small multi-view training step. :class:`FastDropout` draws the same
distribution with fewer random numbers:

* ``p = 0.5`` (MvNNcor's and the paper preset's rate): every element needs one fair coin, and one
  uniform 32-bit integer (the low half of ``torch.randint(0, 2**32)``, exactly uniform) holds 32
  of them, so the mask costs numel / 32 draws and a few vectorised bit operations (bit k of word
  w is element 32 w + k). Each element is kept with probability exactly 1/2, independently.
* any other ``p``: one ``torch.rand`` per element, kept where ``rand >= p`` (Bernoulli(1 - p) up
  to the 2^-24 resolution of float32 uniforms, as ``nn.Dropout``'s kernel).

Kept elements are scaled by 1 / (1 - p); evaluation mode is the identity. :func:`keep_mask` may
be given the shape of a broadcastable mask (e.g. one mask shared by several leave-one-out
subsets).
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor, nn

_SHIFTS = torch.arange(32, dtype=torch.int32)
_LOW = slice(0, 1) if sys.byteorder == "little" else slice(1, 2)  # int64 -> its low int32


def _bits(shape: tuple[int, ...], device: torch.device | str) -> Tensor:
    """int32 0/1 of ``shape``, each an independent fair coin (32 per random 32-bit word)."""
    numel = 1
    for s in shape:
        numel *= int(s)
    words = torch.randint(0, 2**32, ((numel + 31) // 32,), dtype=torch.int64, device=device)
    low = words.view(torch.int32).view(-1, 2)[:, _LOW]  # each word's low 32 bits
    return ((low >> _SHIFTS.to(device)) & 1).view(-1)[:numel].view(shape)


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device | str = "cpu") -> Tensor:
    """A bool tensor of ``shape``: True (keep) with probability 1 - p, independently."""
    if p == 0.5:
        return _bits(shape, device).bool()
    return torch.rand(shape, device=device) >= p


class FastDropout(nn.Module):
    """Inverted dropout (as ``nn.Dropout``) with :func:`keep_mask`; identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1); got {p}")
        self.p = float(p)

    def mask(self, shape: tuple[int, ...], like: Tensor) -> Tensor | None:
        """The scaled keep-mask (0 or 1 / (1 - p), dtype of ``like``), or None when inactive."""
        if not self.training or self.p == 0.0:
            return None
        scale = 1.0 / (1.0 - self.p)
        if self.p == 0.5:  # int 0/1 times 2.0 -> the float mask in one operation
            return (_bits(tuple(shape), like.device) * scale).to(like.dtype)
        return keep_mask(tuple(shape), self.p, like.device).to(like.dtype) * scale

    def forward(self, x: Tensor) -> Tensor:
        m = self.mask(tuple(x.shape), x)
        return x if m is None else x * m

    def extra_repr(self) -> str:
        return f"p={self.p}"
