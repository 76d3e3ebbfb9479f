"""The 2D branch: a torchvision ResNet-18 encoder with a SwiftNet-like upsampling decoder.

Encoder: ResNet-18's stem and layers 1..4 (64, 128, 256, 512 channels at strides 4, 8, 16, 32);
their outputs are the image features LI-fusion reads at the four 3D encoder stages. Decoder
(SwiftNet, Orsic et al. CVPR 2019): spatial pyramid pooling on layer 4 (average pooling to
``spp_grids`` grids, 1 x 1 convolutions, upsampled and concatenated, fused to ``width``
channels), then three upsampling steps, each adding a 1 x 1 projection of the skip features of
layers 3, 2, 1 and blending with a 3 x 3 convolution: ``width`` channels at stride 4. A 1 x 1
convolution classifies every pixel. Weights: random, or a local torchvision state dict
(``weights``); nothing is downloaded.

:func:`gather` samples feature maps at points with ``grid_sample(align_corners=True)`` at
normalised coordinates ``u / (W - 1) * 2 - 1`` of the original image (pixel centres at integers).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def load_resnet18(weights: str | None) -> nn.Module:
    try:
        from torchvision.models import resnet18
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the 2D branch needs torchvision (pip install 'mv2d-bench[seg]'); or set "
            "model.image_branch = false for the LiDAR-only network"
        ) from exc
    net = resnet18(weights=None)
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: model.image_weights: file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            raise ValueError(
                f"{path}: model.image_weights: not a torch state dict ({exc})"
            ) from None
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(
                f"{path}: model.image_weights: not a ResNet-18 state dict (missing "
                f"{missing[:3]}, unexpected {unexpected[:3]})"
            )
    return net


class SPP(nn.Module):
    def __init__(self, cin: int, width: int, grids: Sequence[int]) -> None:
        super().__init__()
        level = max(width // 2, 1)
        self.grids = tuple(int(g) for g in grids)
        self.reduce = conv_bn_relu(cin, width, 1)
        # no BatchNorm on the pooled maps: a 1 x 1 grid of one image has one value per channel
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, level, 1), nn.ReLU(inplace=True)) for _ in self.grids
        )
        self.fuse = conv_bn_relu(width + level * len(self.grids), width, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        size = x.shape[-2:]
        parts = [x]
        for g, conv in zip(self.grids, self.levels, strict=True):
            pooled = F.adaptive_avg_pool2d(x, (min(g, size[0]), min(g, size[1])))
            parts.append(
                F.interpolate(conv(pooled), size=size, mode="bilinear", align_corners=False)
            )
        return self.fuse(torch.cat(parts, dim=1))


class Upsample(nn.Module):
    def __init__(self, skip: int, width: int) -> None:
        super().__init__()
        self.skip = conv_bn_relu(skip, width, 1)
        self.blend = conv_bn_relu(width, width, 3)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.blend(x + self.skip(skip))


class ImageBranch(nn.Module):
    """``forward(images (N, 3, H, W)) -> (stages [4 maps], features (N, width, H/4, W/4),
    logits (N, classes, H/4, W/4))``."""

    stage_channels = (64, 128, 256, 512)

    def __init__(
        self,
        num_classes: int,
        width: int = 128,
        spp_grids: Sequence[int] = (8, 4, 2, 1),
        weights: str | None = None,
    ) -> None:
        super().__init__()
        r = load_resnet18(weights)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)
        self.layers = nn.ModuleList([r.layer1, r.layer2, r.layer3, r.layer4])
        self.width = int(width)
        self.spp = SPP(512, self.width, spp_grids)
        self.ups = nn.ModuleList(Upsample(c, self.width) for c in (256, 128, 64))
        self.classifier = nn.Conv2d(self.width, num_classes, 1)

    def forward(self, images: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        x = self.stem(images)
        stages = []
        for layer in self.layers:
            x = layer(x)
            stages.append(x)
        y = self.spp(stages[3])
        for up, skip in zip(self.ups, (stages[2], stages[1], stages[0]), strict=True):
            y = up(y, skip)
        return stages, y, self.classifier(y)


def gather(maps: Tensor, image: Tensor, grid: Tensor) -> Tensor:
    """Sample ``maps`` (N_images, C, h, w) at points: ``image`` (M,) index of each point's image,
    ``grid`` (M, 2) its normalised (x, y) in [-1, 1] (align_corners=True). Returns (M, C)."""
    out = maps.new_zeros(image.shape[0], maps.shape[1])
    if image.numel() == 0:
        return out
    for i in torch.unique(image).tolist():
        sel = (image == i).nonzero(as_tuple=True)[0]
        g = grid[sel].to(maps.dtype).view(1, 1, -1, 2)
        sampled = F.grid_sample(maps[i : i + 1], g, mode="bilinear", align_corners=True)
        out = out.index_copy(0, sel, sampled[0, :, 0].t())
    return out
