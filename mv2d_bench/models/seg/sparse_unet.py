"""The sparse voxel 3D branch on spconv 2.x (SPVCNN-like; see :mod:`.point_voxel`).

Points are voxelised at ``voxel_size`` (default 0.05 m; the voxel of a point is
``floor(xyz / voxel_size)``), each voxel's input is the mean (x, y, z, intensity) of its points.
Residual blocks are two 3 x 3 x 3 submanifold convolutions with BatchNorm; a stage downsamples
with a 2 x 2 x 2 stride-2 sparse convolution, and the decoder upsamples with the matching
inverse convolution (the same ``indice_key``), so decoder levels have exactly the encoder
levels' voxels. Every spconv call goes through :class:`.spconv_guard.Guarded` (one thread on
the CPU, forward and backward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mv2d_bench.models.seg.point_voxel import PointVoxelUNet, scatter_mean
from mv2d_bench.models.seg.spconv_guard import Guarded


def _spconv():
    try:
        import spconv.pytorch as spconv
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "model.backbone_3d = 'spconv' needs spconv 2.x (pip install 'mv2d-bench[seg]' or "
            "spconv-cuXXX); use model.backbone_3d = 'range' for the pure-torch branch"
        ) from exc
    return spconv


def _bn_relu(x, bn: nn.Module, relu: bool = True):
    f = bn(x.features)
    return x.replace_feature(torch.relu(f) if relu else f)


class SparseResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, key: str) -> None:
        super().__init__()
        spconv = _spconv()
        self.conv1 = Guarded(spconv.SubMConv3d(cin, cout, 3, bias=False, indice_key=key))
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = Guarded(spconv.SubMConv3d(cout, cout, 3, bias=False, indice_key=key))
        self.bn2 = nn.BatchNorm1d(cout)
        self.skip = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout))
        )

    def forward(self, x):
        out = _bn_relu(self.conv1(x), self.bn1)
        out = _bn_relu(self.conv2(out), self.bn2, relu=False)
        return out.replace_feature(torch.relu(out.features + self.skip(x.features)))


class SparseUNet(PointVoxelUNet):
    """SPVCNN-like sparse voxel U-Net (see the module docstring)."""

    in_channels = 4

    def __init__(
        self,
        voxel_size: float = 0.05,
        encoder: Sequence[int] = (32, 64, 128, 256),
        decoder: Sequence[int] = (256, 128, 96, 96),
        stem: int = 32,
    ) -> None:
        super().__init__(encoder, decoder, stem)
        if voxel_size <= 0:
            raise ValueError(f"voxel_size must be > 0; got {voxel_size}")
        spconv = _spconv()
        self.voxel_size = float(voxel_size)
        c = self.stem_channels
        self.stem1 = Guarded(
            spconv.SubMConv3d(self.in_channels, c, 3, bias=False, indice_key="subm0")
        )
        self.stem_bn1 = nn.BatchNorm1d(c)
        self.stem2 = Guarded(spconv.SubMConv3d(c, c, 3, bias=False, indice_key="subm0"))
        self.stem_bn2 = nn.BatchNorm1d(c)
        self.down = nn.ModuleList()
        self.down_bn = nn.ModuleList()
        self.enc_blocks = nn.ModuleList()
        prev = c
        for s, width in enumerate(self.encoder_channels, start=1):
            self.down.append(
                Guarded(
                    spconv.SparseConv3d(prev, prev, 2, stride=2, bias=False, indice_key=f"down{s}")
                )
            )
            self.down_bn.append(nn.BatchNorm1d(prev))
            self.enc_blocks.append(
                nn.Sequential(
                    SparseResBlock(prev, width, f"subm{s}"),
                    SparseResBlock(width, width, f"subm{s}"),
                )
            )
            prev = width
        skips = [c, *self.encoder_channels[:3]]  # channels of levels 0..3
        self.up = nn.ModuleList()
        self.up_bn = nn.ModuleList()
        self.dec_blocks = nn.ModuleList()
        for u, width in enumerate(self.decoder_channels, start=1):
            level = 4 - u
            self.up.append(
                Guarded(
                    spconv.SparseInverseConv3d(
                        prev, width, 2, bias=False, indice_key=f"down{level + 1}"
                    )
                )
            )
            self.up_bn.append(nn.BatchNorm1d(width))
            self.dec_blocks.append(
                nn.Sequential(
                    SparseResBlock(width + skips[level], width, f"subm{level}"),
                    SparseResBlock(width, width, f"subm{level}"),
                )
            )
            prev = width
        self._rows: dict[int, Tensor] = {}
        self._base: Tensor | None = None

    # -- grid -----------------------------------------------------------------------------
    def encode(self, points: Tensor, batch: Tensor, ring: Tensor | None, n_scans: int):
        spconv = _spconv()
        coords = torch.floor(points[:, :3] / self.voxel_size).to(torch.int64)
        coords = coords - coords.min(dim=0).values
        shape = [int(-(-(int(m) + 1) // 16) * 16) for m in coords.max(dim=0).values]
        key = self._key(batch, coords, shape)
        uniq, inverse = torch.unique(key, return_inverse=True)
        feats, _ = scatter_mean(points[:, :4].to(torch.float32), inverse, len(uniq))
        vox = self._unkey(uniq, shape)
        self._base = torch.cat([batch[:, None], coords], dim=1)
        self._shape = shape
        self._rows = {0: inverse}
        indices = vox.to(torch.int32)
        return spconv.SparseConvTensor(feats, indices, shape, n_scans)

    @staticmethod
    def _key(batch: Tensor, coords: Tensor, shape: Sequence[int]) -> Tensor:
        return ((batch * shape[0] + coords[:, 0]) * shape[1] + coords[:, 1]) * shape[2] + coords[
            :, 2
        ]

    @staticmethod
    def _unkey(key: Tensor, shape: Sequence[int]) -> Tensor:
        z = key % shape[2]
        rest = key // shape[2]
        y = rest % shape[1]
        rest = rest // shape[1]
        x = rest % shape[0]
        b = rest // shape[0]
        return torch.stack([b, x, y, z], dim=1)

    def _lookup(self, level: int, x) -> None:
        shape = [s >> level for s in self._shape]
        base = self._base
        wanted = self._key(base[:, 0], base[:, 1:] >> level, shape)
        idx = x.indices.to(torch.int64)
        have = self._key(idx[:, 0], idx[:, 1:], shape)
        order = torch.argsort(have)
        pos = torch.searchsorted(have[order], wanted).clamp(max=len(order) - 1)
        rows = order[pos]
        if not torch.equal(have[rows], wanted):  # pragma: no cover - a spconv invariant
            raise RuntimeError(f"sparse level {level}: a point's voxel is missing from the grid")
        self._rows[level] = rows

    def point_rows(self, level: int) -> Tensor:
        return self._rows[level]

    def rows(self, x) -> Tensor:
        return x.features

    def with_rows(self, x, rows: Tensor):
        return x.replace_feature(rows)

    # -- stages ---------------------------------------------------------------------------
    def run_stem(self, x):
        x = _bn_relu(self.stem1(x), self.stem_bn1)
        return _bn_relu(self.stem2(x), self.stem_bn2)

    def run_encoder(self, stage: int, x):
        x = _bn_relu(self.down[stage - 1](x), self.down_bn[stage - 1])
        if stage not in self._rows:
            self._lookup(stage, x)
        return self.enc_blocks[stage - 1](x)

    def run_decoder(self, stage: int, x, skip: Any):
        x = _bn_relu(self.up[stage - 1](x), self.up_bn[stage - 1])
        if not torch.equal(x.indices, skip.indices):  # pragma: no cover - a spconv invariant
            raise RuntimeError("inverse convolution did not restore the encoder's voxels")
        x = x.replace_feature(torch.cat([x.features, skip.features], dim=1))
        return self.dec_blocks[stage - 1](x)
