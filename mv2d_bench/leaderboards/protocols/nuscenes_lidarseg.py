"""nuScenes-lidarseg protocols: ``nuscenes-lidarseg/val@1`` and its camera-only ``val-fov@1``.

Exactly the devkit's ``LidarSegEval`` on the validation split: one confusion matrix over every
point of every validation keyframe, the 16 challenge classes (predictions in 1..16; 0 is never a
valid prediction), ground-truth 0 (ignore) dropped, per-class IoU and mIoU as the ``nanmean``
over the classes present in labels or predictions (see
:mod:`mv2d_bench.leaderboards.protocols.segmentation`). ``val`` is the validation split of the
benchmark's version: ``val`` of v1.0-trainval, ``mini_val`` of v1.0-mini.

``val-fov@1`` scores only the points that at least one of the six cameras sees (the devkit's
``map_pointcloud_to_image`` rule: depth > 1 m, 1 < u < W - 1, 1 < v < H - 1). It is what the
MV2D authors' code evaluates (it deletes every point no camera sees): its numbers are NOT
comparable with the full-scan protocol.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mv2d_bench.leaderboards.protocols.base import Metric, Score
from mv2d_bench.leaderboards.protocols.segmentation import SegProtocol, seg_metrics
from mv2d_bench.loaders import nuscenes_classes as nc

PRED = (
    "predicted class per point: ints (N,) in 1..16, or logits (N, 16) over the 16 classes "
    "(or (N, 17) with the ignore class first) whose argmax is taken"
)
LABEL = "ground-truth class per point: ints (N,) in 0..16, the devkit's mapped classes (0 = ignore)"


class NuScenesLidarsegVal(SegProtocol):
    id: ClassVar[str] = "nuscenes-lidarseg/val@1"
    benchmark: ClassVar[str] = "nuscenes-lidarseg"
    description: ClassVar[str] = (
        "nuScenes-lidarseg validation split, every point of every keyframe, as the devkit's "
        "LidarSegEval: one confusion matrix, 16 classes, predictions in 1..16, mIoU (%) = "
        "nanmean over the classes present in labels or predictions. One run per entry."
    )
    metrics: ClassVar[tuple[Metric, ...]] = seg_metrics("mean IoU over the 16 classes (nanmean)")
    num_classes: ClassVar[int] = nc.NUM_CLASSES + 1
    class_names: ClassVar[tuple[str, ...]] = nc.CLASSES
    rule: ClassVar[str] = "nuscenes"
    lowest_pred: ClassVar[int] = 1
    npz_keys: ClassVar[dict[str, str]] = {"pred": PRED, "label": LABEL}

    def score_folder(self, folder: str, root: str | None = None, **options: Any) -> Score:
        """Score ``folder/lidarseg/<val split>/<lidar token>_lidarseg.bin`` (uint8 1..16, the
        devkit's submission format) against the labels of the nuScenes tree at ``root``."""
        from mv2d_bench.leaderboards.seg_submission import score_nuscenes_folder

        return score_nuscenes_folder(self, folder, root, **options)


class NuScenesLidarsegValFov(NuScenesLidarsegVal):
    id: ClassVar[str] = "nuscenes-lidarseg/val-fov@1"
    description: ClassVar[str] = (
        "nuScenes-lidarseg validation split, ONLY the points at least one camera sees (depth > "
        "1 m, inside the image by 1 px), as the MV2D authors' code evaluates; otherwise as "
        "nuscenes-lidarseg/val@1. Not comparable with the full-scan protocol."
    )
    metrics: ClassVar[tuple[Metric, ...]] = seg_metrics(
        "mean IoU over the 16 classes (nanmean), camera-visible points only"
    )
    fov: ClassVar[bool] = True
    board_notes: ClassVar[tuple[str, ...]] = (
        "Camera-visible points only, as the MV2D authors' code evaluates (it deletes every point "
        "no camera sees): these numbers are not comparable with nuscenes-lidarseg/val@1.",
    )
    npz_keys: ClassVar[dict[str, str]] = {
        "pred": PRED,
        "label": LABEL,
        "visible": "bool (N,): True where at least one camera sees the point",
    }
