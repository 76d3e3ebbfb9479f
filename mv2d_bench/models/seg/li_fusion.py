"""LI-fusion (EPNet, Huang et al. ECCV 2020): point-wise fusion of image features into points.

For a point with LiDAR feature p and the image feature i sampled at its pixel, a learnt
attention weight ``w = sigmoid(FC(tanh(FC_p(p) + FC_i(i))))`` scales the projected image
feature, and ``fused = ReLU(BN(FC([p, w * FC_img(i)])))``. :class:`LIFusion` returns the change
``fused - p``; the 3D branch averages it into the point's cell, and only for points that a
camera sees (the others are left as they are).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LIFusion(nn.Module):
    def __init__(self, point_channels: int, image_channels: int, hidden: int | None = None) -> None:
        super().__init__()
        h = hidden or max(point_channels // 4, 4)
        self.fc_point = nn.Linear(point_channels, h)
        self.fc_image = nn.Linear(image_channels, h)
        self.attention = nn.Linear(h, 1)
        self.image_proj = nn.Linear(image_channels, point_channels)
        self.out = nn.Sequential(
            nn.Linear(2 * point_channels, point_channels),
            nn.BatchNorm1d(point_channels),
            nn.ReLU(inplace=True),
        )

    def weight(self, point: Tensor, image: Tensor) -> Tensor:
        """The attention weight per point, (M, 1) in (0, 1)."""
        return torch.sigmoid(
            self.attention(torch.tanh(self.fc_point(point) + self.fc_image(image)))
        )

    def forward(self, point: Tensor, image: Tensor) -> Tensor:
        w = self.weight(point, image)
        fused = self.out(torch.cat([point, w * self.image_proj(image)], dim=1))
        return fused - point
