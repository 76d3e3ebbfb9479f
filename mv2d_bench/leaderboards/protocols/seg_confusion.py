"""Point-wise semantic segmentation scoring: one confusion matrix over a whole split.

:class:`ConfusionMatrix` is a ``torchmetrics.Metric`` whose only state is the (K, K) int64
confusion matrix (rows = ground truth, columns = prediction, K = classes + the ignore class 0),
declared with ``dist_reduce_fx="sum"``: ``update`` adds a batch (one ``bincount`` on the tensors'
device, over a small integer key: int16 while K * K fits), ``compute`` (synchronised across
processes by torchmetrics) turns the matrix into the protocol's :class:`Score`. Points whose
ground truth is 0 are dropped; with ``visible`` only camera-visible points are counted.

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
import torch
from torch import Tensor
from torchmetrics import Metric as TorchMetric

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
    else:  # pragma: no cover - guarded by the constructor
        raise ValueError(f"unknown IoU rule {rule!r}; expected one of {RULES}")
    metrics = {"miou": 100.0 * miou}
    for k, name in enumerate(class_names, start=1):
        if np.isfinite(iou[k]):
            metrics[f"iou_{name}"] = 100.0 * float(iou[k])
    return Score(metrics=metrics, per_trial=[dict(metrics)])


def as_class_tensor(values: Any, key: str, device: torch.device, num_classes: int) -> Tensor:
    """An integer class vector from an array or tensor; 2-D float logits are reduced by argmax.

    Logits over the K - 1 real classes give ``argmax + 1``; logits over all K columns give the
    argmax over columns 1..K-1 (+1): either way a prediction is never the ignore class 0.
    """
    t = values if isinstance(values, Tensor) else torch.as_tensor(np.asarray(values))
    t = t.to(device)
    if t.dim() == 2 and t.is_floating_point():
        if t.shape[1] == num_classes - 1:
            return t.argmax(dim=1) + 1
        if t.shape[1] == num_classes:
            return t[:, 1:].argmax(dim=1) + 1
        raise ValueError(
            f"{key}: logits have {t.shape[1]} columns; expected {num_classes - 1} (the real "
            f"classes) or {num_classes} (with the ignore class 0 first)"
        )
    if t.dim() != 1:
        raise ValueError(f"{key}: expected a 1-D array of class ids, got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{key}: expected integer class ids, got dtype {t.dtype}")
    return t


class ConfusionMatrix(TorchMetric):
    """Streaming confusion matrix of a segmentation protocol (see the module docstring).

    ``update(pred, label[, visible])``: ``label`` (N,) ints in 0..K-1 (0 = ignore), ``pred``
    (N,) ints (``lowest_pred``..K-1) or logits, ``visible`` (N,) bool when ``fov``.
    ``compute()`` returns a :class:`Score`.
    """

    full_state_update: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    is_differentiable: ClassVar[bool] = False

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str],
        rule: str,
        lowest_pred: int = 1,
        fov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if rule not in RULES:
            raise ValueError(f"unknown IoU rule {rule!r}; expected one of {RULES}")
        if len(class_names) != num_classes - 1:
            raise ValueError(f"{num_classes - 1} class names expected, got {len(class_names)}")
        self.num_classes = int(num_classes)
        self.class_names = tuple(class_names)
        self.rule = rule
        self.lowest_pred = int(lowest_pred)
        self.fov = bool(fov)
        k = self.num_classes
        self.key_dtype = torch.int16 if k * k + 1 <= torch.iinfo(torch.int16).max else torch.int32
        self.add_state(
            "confmat", default=torch.zeros(k, k, dtype=torch.int64), dist_reduce_fx="sum"
        )

    def update(self, pred: Any, label: Any, visible: Any = None) -> None:  # type: ignore[override]
        k, device = self.num_classes, self.confmat.device
        label = as_class_tensor(label, "label", device, k)
        pred = as_class_tensor(pred, "pred", device, k)
        if pred.shape != label.shape:
            raise ValueError(
                f"pred has {pred.shape[0]} points but label has {label.shape[0]}; expected one "
                "prediction per point"
            )
        if self.fov and visible is None:
            raise ValueError("visible: required by this camera-field-of-view protocol")
        if pred.numel() == 0:
            return
        _check_range(label, "label", 0, k - 1)
        _check_range(pred, "pred", self.lowest_pred, k - 1)
        key = label.to(self.key_dtype).mul_(k).add_(pred.to(self.key_dtype))
        bins = k * k
        if self.fov:
            vis = visible if isinstance(visible, Tensor) else torch.as_tensor(np.asarray(visible))
            vis = vis.to(device)
            if vis.dtype != torch.bool or vis.shape != label.shape:
                raise ValueError(
                    f"visible: expected bool (N,) with N = {label.shape[0]}; got "
                    f"{vis.dtype} {tuple(vis.shape)}"
                )
            key = torch.where(vis, key, torch.full_like(key, bins))  # one extra bin, dropped
        counts = torch.bincount(key, minlength=bins + 1)[:bins].view(k, k)
        counts[0] = 0  # ground truth 0 is never scored
        self.confmat += counts

    def compute(self) -> Score:  # type: ignore[override]
        return score_from_confusion(self.confmat.cpu().numpy(), self.rule, self.class_names)


def _check_range(t: Tensor, key: str, low: int, high: int) -> None:
    lo, hi = torch.aminmax(t)
    lo, hi = int(lo), int(hi)
    if lo < low or hi > high:
        raise ValueError(f"{key}: class ids must be in {low}..{high}; found values {lo}..{hi}")


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

    def metric(self, name: str | None = None):  # type: ignore[override]
        """Without a name: a fresh streaming :class:`ConfusionMatrix` for this protocol. With a
        name: the metric descriptor of that name."""
        if name is not None:
            return super().metric(name)
        return ConfusionMatrix(
            self.num_classes,
            self.class_names,
            self.rule,
            lowest_pred=self.lowest_pred,
            fov=self.fov,
        )

    def score(self, **arrays: Any) -> Score:
        """reset -> update(all arrays) -> compute of :meth:`metric`."""
        unknown = sorted(set(arrays) - set(self.npz_keys))
        missing = [k for k in self.npz_keys if k not in arrays]
        if missing or unknown:
            raise TypeError(
                f"{self.id}: score() takes {', '.join(self.npz_keys)}; missing "
                f"{missing or '-'}, unexpected {unknown or '-'}"
            )
        metric = self.metric()
        metric.update(**arrays)
        return metric.compute()

    def score_folder(self, folder: str, root: str | None = None, **options: Any) -> Score:
        """Score a submission folder against the benchmark's labels under ``root``."""
        raise NotImplementedError


def seg_metrics(description: str) -> tuple[Metric, ...]:
    return (Metric("miou", "max", 0.0, 100.0, "%", description),)
