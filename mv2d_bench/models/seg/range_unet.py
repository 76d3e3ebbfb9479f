"""The pure-torch 3D branch: a range-image U-Net in the same point-voxel layout
(:mod:`.point_voxel`), for machines without spconv.

Each point gets a range-image cell: its row is the laser ring index when the format has one
(nuScenes, 32 rings) or else the pitch angle between ``fov_down`` and ``fov_up`` in ``height``
bins (SemanticKITTI's HDL-64E: 3 deg to -25 deg, 64 rows), its column the azimuth in ``width``
bins. A cell's input is the mean (x, y, z, intensity, range) of its points plus an occupancy
channel (an empty cell is all zero). Stages are 3 x 3 convolutions with BatchNorm; a stage
halves the columns and, while at least 8 rows remain, the rows; the decoder upsamples (nearest)
to the skip's size. Points read their own cell at every level (the ``point_rows``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mv2d_bench.models.seg.point_voxel import PointVoxelUNet, scatter_mean


def conv_bn_relu(cin: int, cout: int, stride: tuple[int, int] = (1, 1)) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout)
        self.conv2 = nn.Sequential(
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        )
        self.skip = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.conv2(self.conv1(x)) + self.skip(x))


class RangeUNet(PointVoxelUNet):
    """Range-image U-Net with a point branch (see the module docstring)."""

    in_channels = 6

    def __init__(
        self,
        height: int = 64,
        width: int = 2048,
        fov_up: float = 3.0,
        fov_down: float = -25.0,
        encoder: Sequence[int] = (32, 64, 128, 256),
        decoder: Sequence[int] = (256, 128, 96, 96),
        stem: int = 32,
    ) -> None:
        super().__init__(encoder, decoder, stem)
        if height < 1 or width < 16 or width % 16:
            raise ValueError(
                f"range image: height must be >= 1 and width a multiple of 16; got {height} x "
                f"{width}"
            )
        if not fov_down < fov_up:
            raise ValueError(f"range image: fov_down ({fov_down}) must be below fov_up ({fov_up})")
        self.height, self.width = int(height), int(width)
        self.fov_up, self.fov_down = float(fov_up), float(fov_down)
        self.row_shift = [0]
        rows = self.height
        for _ in range(4):
            self.row_shift.append(self.row_shift[-1] + (1 if rows >= 8 else 0))
            rows = rows // 2 if rows >= 8 else rows
        if self.height % (1 << self.row_shift[4]):
            raise ValueError(
                f"range image: height {self.height} must be a multiple of "
                f"{1 << self.row_shift[4]} (it is halved {self.row_shift[4]} times)"
            )
        c = self.stem_channels
        self.stem = nn.Sequential(conv_bn_relu(self.in_channels, c), conv_bn_relu(c, c))
        self.down = nn.ModuleList()
        self.enc_blocks = nn.ModuleList()
        prev = c
        for s, w in enumerate(self.encoder_channels, start=1):
            sr = 2 if self.row_shift[s] > self.row_shift[s - 1] else 1
            self.down.append(conv_bn_relu(prev, prev, stride=(sr, 2)))
            self.enc_blocks.append(nn.Sequential(ResBlock2d(prev, w), ResBlock2d(w, w)))
            prev = w
        skips = [c, *self.encoder_channels[:3]]
        self.up = nn.ModuleList()
        self.dec_blocks = nn.ModuleList()
        for u, w in enumerate(self.decoder_channels, start=1):
            level = 4 - u
            self.up.append(conv_bn_relu(prev, w))
            self.dec_blocks.append(nn.Sequential(ResBlock2d(w + skips[level], w), ResBlock2d(w, w)))
            prev = w
        self._cells: tuple[Tensor, Tensor, Tensor] | None = None

    # -- the range image ------------------------------------------------------------------
    def cells(self, points: Tensor, ring: Tensor | None) -> tuple[Tensor, Tensor]:
        """(row, column) of every point."""
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        col = torch.floor(0.5 * (1.0 - torch.atan2(y, x) / math.pi) * self.width)
        col = col.clamp(0, self.width - 1).to(torch.int64)
        if ring is not None:
            row = ring.to(torch.int64)
            if bool((row < 0).any()) or bool((row >= self.height).any()):
                raise ValueError(
                    f"ring index outside 0..{self.height - 1}: set model.range_height to the "
                    "number of laser rings"
                )
        else:
            r = torch.linalg.vector_norm(points[:, :3], dim=1).clamp(min=1e-6)
            pitch = torch.asin((z / r).clamp(-1, 1))
            up, down = math.radians(self.fov_up), math.radians(self.fov_down)
            row = torch.floor((1.0 - (pitch - down) / (up - down)) * self.height)
            row = row.clamp(0, self.height - 1).to(torch.int64)
        return row, col

    def encode(self, points: Tensor, batch: Tensor, ring: Tensor | None, n_scans: int) -> Tensor:
        row, col = self.cells(points, ring)
        self._cells = (batch, row, col)
        self._n = n_scans
        index = (batch * self.height + row) * self.width + col
        rng = torch.linalg.vector_norm(points[:, :3], dim=1, keepdim=True)
        feats = torch.cat([points[:, :4], rng, torch.ones_like(rng)], dim=1).float()
        n_cells = n_scans * self.height * self.width
        mean, _ = scatter_mean(feats, index, n_cells)
        return self.with_rows(
            mean.new_zeros(n_scans, self.in_channels, self.height, self.width), mean
        )

    def point_rows(self, level: int) -> Tensor:
        batch, row, col = self._cells
        h = self.height >> self.row_shift[level]
        w = self.width >> level
        return (batch * h + (row >> self.row_shift[level])) * w + (col >> level)

    def rows(self, x: Tensor) -> Tensor:
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])

    def with_rows(self, x: Tensor, rows: Tensor) -> Tensor:
        b, _, h, w = x.shape
        return rows.view(b, h, w, rows.shape[1]).permute(0, 3, 1, 2).contiguous()

    # -- stages ---------------------------------------------------------------------------
    def run_stem(self, x: Tensor) -> Tensor:
        return self.stem(x)

    def run_encoder(self, stage: int, x: Tensor) -> Tensor:
        return self.enc_blocks[stage - 1](self.down[stage - 1](x))

    def run_decoder(self, stage: int, x: Tensor, skip: Any) -> Tensor:
        x = self.up[stage - 1](F.interpolate(x, size=skip.shape[-2:], mode="nearest"))
        return self.dec_blocks[stage - 1](torch.cat([x, skip], dim=1))
