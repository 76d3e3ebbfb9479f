"""The Gaussian information bottleneck E_phi: observation v -> representation z.

An MLP maps v to 2 x z_dim numbers: the mean and (through softplus) the standard deviation of
q(z | v) = N(mean, diag(std^2)). While training, z is a reparameterised sample
``mean + std * eps`` (eps ~ N(0, I)); in evaluation mode z is the mean.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))`` as ``relu(x) + log(1 + exp(-|x|))``.

    Mathematically torch's ``F.softplus``; written with ``exp``/``log`` because the CPU kernels
    of ``softplus``/``log1p`` are not vectorised in some torch builds (10x slower). The rounding
    of ``1 + exp(-|x|)`` costs at most 6e-8 absolute (float32), and the gradient stays exact.
    """
    return torch.relu(x) + torch.log(1.0 + torch.exp(-x.abs()))


class GaussianBottleneck(nn.Module):
    """``forward(v) -> (z, mean, std)``.

    ``hidden`` > 0 puts one ReLU hidden layer before the 2 x z_dim output (0: a single linear
    map). ``min_std`` is added to the softplus so that std stays strictly positive.
    """

    def __init__(self, in_dim: int, z_dim: int, hidden: int = 0, min_std: float = 1e-4) -> None:
        super().__init__()
        if in_dim < 1 or z_dim < 1 or hidden < 0:
            raise ValueError(
                f"GaussianBottleneck: expected in_dim, z_dim >= 1 and hidden >= 0; "
                f"got in_dim={in_dim}, z_dim={z_dim}, hidden={hidden}"
            )
        if min_std < 0:
            raise ValueError(f"GaussianBottleneck: min_std must be >= 0; got {min_std}")
        self.in_dim, self.z_dim, self.hidden, self.min_std = in_dim, z_dim, hidden, float(min_std)
        if hidden:
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * z_dim)
            )
        else:
            self.net = nn.Linear(in_dim, 2 * z_dim)

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean, raw = self.net(v).chunk(2, dim=-1)
        std = softplus(raw) + self.min_std
        if self.training:
            z = mean + std * torch.randn_like(std)
        else:
            z = mean
        return z, mean, std
