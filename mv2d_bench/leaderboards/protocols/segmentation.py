"""Point-wise semantic segmentation protocols: one confusion matrix over a whole split.

The streaming state is :class:`~mv2d_bench.leaderboards.metrics.confusion.ConfusionMatrix`
(a (K, K) int64 sum state, K = classes + the ignore class 0, rows = ground truth); this module
turns a confusion matrix into the protocol's :class:`Score`.

The IoU rules (:func:`iou_nuscenes`, :func:`iou_semantickitti`) are those of the official tools:

* nuscenes-devkit ``ConfusionMatrix``: row and column 0 zeroed, IoU_c = TP / (GT_c + P_c - TP)
  with the union cast to float32 as the devkit does, NaN where the union is 0, mIoU =
  ``nanmean`` (a class absent from both labels and predictions is skipped; class 0 is always
  NaN). Predictions must be in 1..K-1 (the devkit asserts it).
* semantic-kitti-api ``np_ioueval``: ground-truth 0 dropped, a valid point predicted 0 is a false
  negative of its class, IoU_c = TP / (TP + FP + FN + 1e-15), mIoU = the plain mean over classes
  1..K-1 (a class absent from both counts as 0).

Reported in percent: ``miou`` and ``iou_<class>`` (nuScenes omits skipped classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.leaderboards.protocols.base import Metric, Protocol, Score

RULES = ("nuscenes", "semantickitti")


def iou_nuscenes(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU (fractions, NaN where undefined) exactly as nuscenes-devkit computes it."""
    conf = np.array(confusion, dtype=np.int64, copy=True)
    conf[0, :] = 0
    conf[:, 0] = 0
    intersection = np.diagonal(conf)
    union = conf.sum(axis=1) + conf.sum(axis=0) - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return intersection / union.astype(np.float32)


def iou_semantickitti(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU (fractions) exactly as semantic-kitti-api's ``np_ioueval`` computes it.

    ``confusion`` has ground truth in rows (np_ioueval keeps the transpose)."""
    conf = np.array(confusion, dtype=np.int64, copy=True)
    conf[0, :] = 0  # np_ioueval: conf[:, ignore] = 0 in its (pred, gt) layout
    tp = np.diagonal(conf)
    fp = conf.sum(axis=0) - tp
    fn = conf.sum(axis=1) - tp
    return tp / (tp + fp + fn + 1e-15)


def score_from_confusion(confusion: np.ndarray, rule: str, class_names: Sequence[str]) -> Score:
    """The protocol's metrics (percent) of a ground-truth x prediction confusion matrix."""
    if int(np.asarray(confusion)[1:].sum()) == 0:
        raise ValueError(
            "no point with a ground-truth class (label 1..K-1) was scored; expected at least one"
        )
    if rule == "nuscenes":
        iou = iou_nuscenes(confusion)
        miou = float(np.nanmean(iou))
    elif rule == "semantickitti":
        iou = iou_semantickitti(confusion)
        miou = float(iou[1:].mean())
    else:
        raise ValueError(f"unknown IoU rule {rule!r}; expected one of {RULES}")
    metrics = {"miou": 100.0 * miou}
    for k, name in enumerate(class_names, start=1):
        if np.isfinite(iou[k]):
            metrics[f"iou_{name}"] = 100.0 * float(iou[k])
    return Score(metrics=metrics, per_trial=[dict(metrics)])


class SegProtocol(Protocol):
    """A point-wise segmentation protocol: one confusion matrix over the whole split."""

    num_classes: ClassVar[int] = 0
    """Classes including the ignore class 0."""
    class_names: ClassVar[tuple[str, ...]] = ()
    rule: ClassVar[str] = ""
    lowest_pred: ClassVar[int] = 1
    fov: ClassVar[bool] = False
    primary: ClassVar[str] = "miou"
    required_seeds: ClassVar[int] = 1
    trials: ClassVar[int] = 1
    metric_class: ClassVar[str] = "mv2d_bench.leaderboards.metrics.confusion:ConfusionMatrix"

    def score_confusion(self, confusion: np.ndarray) -> Score:
        """The protocol's metrics of a (K, K) ground-truth x prediction confusion matrix."""
        return score_from_confusion(confusion, self.rule, self.class_names)

    def score_folder(self, folder: str, root: str | None = None, **options: Any) -> Score:
        """Score a submission folder against the benchmark's labels under ``root``."""
        raise NotImplementedError


def seg_metrics(description: str) -> tuple[Metric, ...]:
    return (Metric("miou", "max", 0.0, 100.0, "%", description),)
