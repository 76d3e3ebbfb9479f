"""Inverted dropout with a cheap keep-mask.

``nn.Dropout`` draws one Bernoulli per element with ``bernoulli_``; on many CPUs that and
``torch.rand`` are scalar Mersenne-Twister code, about 10 ns per element, which made dropout the
largest single cost of a small multi-view training step. :class:`FastDropout` draws the same
distribution with fewer random numbers:

* ``p = 0.5`` (MvNNcor's and the paper preset's rate): every element needs one fair coin, and one
  uniform 32-bit integer (``torch.randint(0, 2**32)``, exactly uniform) holds 32 of them, so the
  mask costs numel / 32 draws and a few vectorised bit operations. Each element is kept with
  probability exactly 1/2, independently.
* any other ``p``: one ``torch.rand`` per element, kept where ``rand >= p`` (Bernoulli(1 - p) up
  to the 2^-24 resolution of float32 uniforms, as ``nn.Dropout``'s kernel).

Kept elements are scaled by 1 / (1 - p); evaluation mode is the identity. :func:`keep_mask` may
be given the shape of a broadcastable mask (e.g. one mask shared by several leave-one-out
subsets).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_SHIFTS = torch.arange(8, dtype=torch.uint8)


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device | str = "cpu") -> Tensor:
    """A bool tensor of ``shape``: True (keep) with probability 1 - p, independently."""
    numel = 1
    for s in shape:
        numel *= int(s)
    if p == 0.5:
        words = torch.randint(0, 2**32, ((numel + 31) // 32,), dtype=torch.int64, device=device)
        # the low 4 bytes of each word are its 32 uniform bits; unpack them 8 per byte
        low = words.view(torch.uint8).view(-1, 8)[:, :4].reshape(-1, 1)
        bits = (low >> _SHIFTS.to(device)) & 1
        return bits.view(-1)[:numel].view(shape).bool()
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
        keep = keep_mask(tuple(shape), self.p, like.device)
        return keep.to(like.dtype) * (1.0 / (1.0 - self.p))

    def forward(self, x: Tensor) -> Tensor:
        m = self.mask(tuple(x.shape), x)
        return x if m is None else x * m

    def extra_repr(self) -> str:
        return f"p={self.p}"
