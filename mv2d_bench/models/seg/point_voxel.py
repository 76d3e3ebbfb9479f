"""The point-voxel U-Net skeleton shared by both 3D branches (SPVCNN-like).

A grid backend (sparse voxels on spconv, :mod:`.sparse_unet`; a dense range image in pure
torch, :mod:`.range_unet`) provides the convolution stages; this module runs them in the
SPVCNN layout and keeps the point branch:

* stem (level 0) -> encoder stages 1..4 (each: downsample x2, two residual blocks; widths
  ``encoder`` = 32-64-128-256) -> decoder stages 1..4 (each: upsample x2, concatenate the skip
  of the same level, two residual blocks; widths ``decoder`` = 256-128-96-96);
* point features: z0 from the stem, z1 = devox(encoder output) + MLP(z0), z2 = devox(decoder
  stage 2) + MLP(z1), z3 = devox(decoder stage 4) + MLP(z2), the output (one row per point);
  after each point update the grid at that level is re-pooled from the points (cell = mean of its
  points), as SPVCNN does. Devoxelisation takes the point's own cell (nearest; SPVCNN
  interpolates trilinearly);
* a fusion hook after each encoder stage s (1..4): ``fuse(s, point_features)`` returns a
  per-point delta (zeros where a point has no image) that is averaged into the cells.

Grid features are handled as rows (cells, channels) through the backend's ``rows``/``with_rows``
and ``point_rows(level)`` (each point's row at that level), so the skeleton is backend-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

FuseFn = Callable[[int, Tensor], "tuple[Tensor, Tensor] | None"]
"""``fuse(stage, point_features) -> (point_mask, delta for those points)`` or None."""


def scatter_mean(values: Tensor, index: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """(mean of ``values`` rows per ``index`` into ``n`` rows, count per row)."""
    out = values.new_zeros(n, values.shape[1])
    out.index_add_(0, index, values)
    count = torch.bincount(index, minlength=n).to(values.dtype)
    return out / count.clamp(min=1).unsqueeze(1), count


def mlp(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU(inplace=True))


class PointVoxelUNet(nn.Module):
    """Skeleton; subclasses set the conv stages and the grid <-> point maps."""

    in_channels: int = 4

    def __init__(
        self,
        encoder: Sequence[int] = (32, 64, 128, 256),
        decoder: Sequence[int] = (256, 128, 96, 96),
        stem: int = 32,
    ) -> None:
        super().__init__()
        if len(encoder) != 4 or len(decoder) != 4:
            raise ValueError(
                f"the 3D branch has 4 encoder and 4 decoder stages; got {list(encoder)} and "
                f"{list(decoder)}"
            )
        self.encoder_channels = tuple(int(c) for c in encoder)
        self.decoder_channels = tuple(int(c) for c in decoder)
        self.stem_channels = int(stem)
        self.out_channels = self.decoder_channels[-1]
        self.point_mlps = nn.ModuleList(
            [
                mlp(self.stem_channels, self.encoder_channels[-1]),
                mlp(self.encoder_channels[-1], self.decoder_channels[1]),
                mlp(self.decoder_channels[1], self.decoder_channels[3]),
            ]
        )

    # -- what a backend implements ------------------------------------------------------------
    def encode(self, points: Tensor, batch: Tensor, ring: Tensor | None, n_scans: int) -> Any:
        """Level-0 grid tensor (and whatever :meth:`point_rows` needs, kept on ``self``)."""
        raise NotImplementedError

    def run_stem(self, x: Any) -> Any:
        raise NotImplementedError

    def run_encoder(self, stage: int, x: Any) -> Any:
        raise NotImplementedError

    def run_decoder(self, stage: int, x: Any, skip: Any) -> Any:
        raise NotImplementedError

    def rows(self, x: Any) -> Tensor:
        raise NotImplementedError

    def with_rows(self, x: Any, rows: Tensor) -> Any:
        raise NotImplementedError

    def point_rows(self, level: int) -> Tensor:
        """(P,) row of every point in the level-``level`` grid (level 0 = the input grid)."""
        raise NotImplementedError

    # -- the shared flow ----------------------------------------------------------------------
    def devox(self, x: Any, level: int) -> Tensor:
        return self.rows(x)[self.point_rows(level)]

    def repool(self, x: Any, level: int, point_features: Tensor) -> Any:
        """Cells that hold points take the mean of their points' features."""
        rows = self.rows(x)
        index = self.point_rows(level)
        mean, count = scatter_mean(point_features, index, rows.shape[0])
        occupied = (count > 0).unsqueeze(1)
        return self.with_rows(x, torch.where(occupied, mean, rows))

    def add_at_points(self, x: Any, level: int, mask: Tensor, delta: Tensor) -> Any:
        """Add the mean of ``delta`` (rows of the points in ``mask``) to their cells."""
        rows = self.rows(x)
        index = self.point_rows(level)[mask]
        mean, _ = scatter_mean(delta, index, rows.shape[0])
        return self.with_rows(x, rows + mean)

    def forward(
        self,
        points: Tensor,
        batch: Tensor,
        ring: Tensor | None = None,
        n_scans: int = 1,
        fuse: FuseFn | None = None,
    ) -> Tensor:
        """Per-point features (P, ``out_channels``)."""
        x = self.run_stem(self.encode(points, batch, ring, n_scans))
        z0 = self.devox(x, 0)
        x = self.repool(x, 0, z0)
        skips = [x]
        for s in range(1, 5):
            x = self.run_encoder(s, x)
            if fuse is not None:
                fused = fuse(s, self.devox(x, s))
                if fused is not None:
                    mask, delta = fused
                    if bool(mask.any()):
                        x = self.add_at_points(x, s, mask, delta)
            skips.append(x)
        z1 = self.devox(x, 4) + self.point_mlps[0](z0)
        x = self.repool(x, 4, z1)
        z = z1
        for u in range(1, 5):
            x = self.run_decoder(u, x, skips[4 - u])
            if u == 2:
                z = self.devox(x, 2) + self.point_mlps[1](z1)
                x = self.repool(x, 2, z)
        return self.devox(x, 0) + self.point_mlps[2](z)
