"""Batches of LiDAR scans with their camera images, for the segmentation task.

:class:`SegScans` is a ``torch.utils.data.Dataset`` over a split's :class:`ScanRef` s; an item
is ``(index, seed)``: the scan and the seed of its augmentation (drawn by the task from the
trainer's generator, so a run is repeatable with any number of DataLoader workers). It returns
one scan as NumPy arrays:

* the points (x, y, z, intensity; float32), the nuScenes ring index, the mapped labels;
* the camera each point is assigned to (``camera_merge``: the last camera that sees it, as the
  MV2D authors' code does, or the first; -1 for none) and its pixel as a ``grid_sample``
  coordinate in [-1, 1] (align_corners=True, pixel centres at integers);
* the scan's camera images resized to ``image_size`` (H, W), uint8.

With ``fov_only`` the points no camera sees are removed (the authors' setting). Augmentation
(training only): a random rotation about z, random flips of x and y, a scale in [0.95, 1.05]
applied to the points after projection, and a horizontal flip of each image (with its pixels'
u). :func:`collate` stacks scans into a :class:`SegBatch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mv2d_bench.loaders.projection import assign_camera
from mv2d_bench.loaders.seg_common import ScanRef, SegBenchmark


@dataclass
class SegBatch:
    points: Tensor
    """(P, 4) float32."""
    batch: Tensor
    """(P,) int64 scan of each point within the batch."""
    ring: Tensor | None
    labels: Tensor
    """(P,) int64 classes 0..K (0 = ignore)."""
    seen: Tensor
    """(P,) bool: some camera sees the point."""
    point_image: Tensor
    """(P,) int64 row of ``images`` (scan * cameras + camera), -1 for none."""
    point_grid: Tensor
    """(P, 2) float32 normalised pixel coordinates."""
    images: Tensor | None
    """(B * cameras, 3, H, W) uint8, or None without the 2D branch."""
    n_scans: int
    ids: list[str]
    counts: list[int]


class SegScans(torch.utils.data.Dataset):
    def __init__(
        self,
        benchmark: SegBenchmark,
        refs: list[ScanRef],
        image_size: tuple[int, int] | None,
        need_cameras: bool = True,
        camera_merge: str = "last",
        fov_only: bool = False,
        augment: bool = False,
    ) -> None:
        self.benchmark = benchmark
        self.refs = refs
        self.image_size = image_size
        self.need_cameras = bool(need_cameras or image_size is not None or fov_only)
        self.camera_merge = camera_merge
        self.fov_only = bool(fov_only)
        self.augment = bool(augment)

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, item: tuple[int, int]) -> dict:
        index, seed = item
        ref = self.refs[index]
        scan = self.benchmark.read_scan(ref, cameras=self.need_cameras)
        rng = np.random.default_rng(seed)
        n = len(scan)
        labels = scan.labels if scan.labels is not None else np.zeros(n, np.uint8)
        n_cams = len(scan.images)
        if self.need_cameras and n_cams:
            cam = assign_camera(scan.visible, self.camera_merge)
            seen = cam >= 0
            uv = scan.uv[np.clip(cam, 0, None), np.arange(n)]
            size = np.array([scan.image_sizes[c] for c in np.clip(cam, 0, None)], np.float64)
        else:
            cam = np.full(n, -1, np.int64)
            seen = np.zeros(n, bool)
            uv = np.zeros((n, 2), np.float32)
            size = np.ones((n, 2))
        flips = np.zeros(max(n_cams, 1), bool)
        if self.augment and n_cams:
            flips = rng.random(n_cams) < 0.5
        u = np.where(flips[np.clip(cam, 0, None)] & seen, size[:, 0] - 1 - uv[:, 0], uv[:, 0])
        grid = np.stack(
            [u / np.maximum(size[:, 0] - 1, 1), uv[:, 1] / np.maximum(size[:, 1] - 1, 1)], 1
        )
        grid = (grid * 2 - 1).astype(np.float32)
        grid[~seen] = 0.0
        points = scan.points.copy()
        if self.augment:
            points[:, :3] = _augment_xyz(points[:, :3], rng)
        keep = seen if self.fov_only else np.ones(n, bool)
        images = None
        if self.image_size is not None and n_cams:
            images = np.stack(
                [
                    _load_image(p, self.image_size, bool(f))
                    for p, f in zip(scan.images, flips, strict=True)
                ]
            )
        return {
            "id": scan.id,
            "points": points[keep],
            "ring": None if scan.ring is None else scan.ring[keep],
            "labels": labels[keep],
            "seen": seen[keep],
            "camera": cam[keep],
            "grid": grid[keep],
            "images": images,
            "n_cams": n_cams,
        }


def _augment_xyz(xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    theta = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)
    flip = np.where(rng.random(2) < 0.5, -1.0, 1.0)
    scale = rng.uniform(0.95, 1.05)
    out = xyz.astype(np.float64) @ rot.T
    out[:, :2] *= flip
    return (out * scale).astype(np.float32)


def _load_image(path: str, size: tuple[int, int], flip: bool) -> np.ndarray:
    """(H, W, 3) uint8, resized (bilinear) to ``size`` = (H, W), flipped left-right."""
    from PIL import Image, UnidentifiedImageError

    from mv2d_bench.loaders.base import DataError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
            if flip:
                im = im.transpose(Image.FLIP_LEFT_RIGHT)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: camera image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def collate(items: list[dict]) -> SegBatch:
    counts = [len(it["points"]) for it in items]
    batch = torch.cat([torch.full((c,), b, dtype=torch.int64) for b, c in enumerate(counts)])
    n_cams = items[0]["n_cams"]
    cam = np.concatenate([np.where(it["camera"] >= 0, b * n_cams + it["camera"], -1)
                          for b, it in enumerate(items)])  # fmt: skip
    images = None
    if items[0]["images"] is not None:
        images = torch.from_numpy(np.concatenate([it["images"] for it in items])).permute(
            0, 3, 1, 2
        )
    ring = None
    if items[0]["ring"] is not None:
        ring = torch.from_numpy(np.concatenate([it["ring"] for it in items]))
    return SegBatch(
        points=torch.from_numpy(np.concatenate([it["points"] for it in items])),
        batch=batch,
        ring=ring,
        labels=torch.from_numpy(np.concatenate([it["labels"] for it in items]).astype(np.int64)),
        seen=torch.from_numpy(np.concatenate([it["seen"] for it in items])),
        point_image=torch.from_numpy(cam.astype(np.int64)),
        point_grid=torch.from_numpy(np.concatenate([it["grid"] for it in items])),
        images=images,
        n_scans=len(items),
        ids=[it["id"] for it in items],
        counts=counts,
    )
