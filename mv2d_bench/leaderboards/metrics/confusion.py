"""The confusion-matrix metric of the segmentation protocols (a torchmetrics sum state).

``update(pred=..., label=...[, visible=...])`` adds one batch: ``label`` (N,) ints in 0..K-1
(0 = ignore), ``pred`` (N,) ints in the protocol's ``lowest_pred``..K-1 or logits (N, K - 1) /
(N, K) (argmax over the real classes), ``visible`` (N,) bool for the camera-only ``*-fov``
protocols. One ``bincount`` per batch on the tensors' device over a small integer key
``label * K + pred`` (int16 while K * K fits); ground truth 0 is never counted. The (K, K) int64
state is declared with ``dist_reduce_fx="sum"``. ``compute()`` (synced) returns the protocol's
``Score`` (:meth:`~mv2d_bench.leaderboards.protocols.segmentation.SegProtocol.score_confusion`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from mv2d_bench.leaderboards.metrics.base import ProtocolMetric
from mv2d_bench.leaderboards.protocols.base import Score


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


class ConfusionMatrix(ProtocolMetric):
    """Streaming confusion matrix of a segmentation protocol (see the module docstring)."""

    higher_is_better = True

    def __init__(self, protocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        k = int(protocol.num_classes)
        self.num_classes = k
        self.lowest_pred = int(protocol.lowest_pred)
        self.fov = bool(protocol.fov)
        self.key_dtype = torch.int16 if k * k + 1 <= torch.iinfo(torch.int16).max else torch.int32
        self.add_state(
            "confmat", default=torch.zeros(k, k, dtype=torch.int64), dist_reduce_fx="sum"
        )

    def update(self, **arrays: Any) -> None:  # type: ignore[override]
        keys = self.protocol.npz_keys
        unknown = sorted(set(arrays) - set(keys))
        missing = [k for k in keys if k not in arrays]
        if missing or unknown:
            raise TypeError(
                f"{self.protocol.id}: update() takes {', '.join(keys)}; missing "
                f"{missing or '-'}, unexpected {unknown or '-'}"
            )
        k, device = self.num_classes, self.confmat.device
        label = as_class_tensor(arrays["label"], "label", device, k)
        pred = as_class_tensor(arrays["pred"], "pred", device, k)
        if pred.shape != label.shape:
            raise ValueError(
                f"pred has {pred.shape[0]} points but label has {label.shape[0]}; expected one "
                "prediction per point"
            )
        visible = None
        if self.fov:
            visible = arrays["visible"]
            visible = (
                visible if isinstance(visible, Tensor) else torch.as_tensor(np.asarray(visible))
            )
            visible = visible.to(device)
            if visible.dtype != torch.bool or visible.shape != label.shape:
                raise ValueError(
                    f"visible: expected bool (N,) with N = {label.shape[0]}; got "
                    f"{visible.dtype} {tuple(visible.shape)}"
                )
        if pred.numel() == 0:
            return
        _check_range(label, "label", 0, k - 1)
        _check_range(pred, "pred", self.lowest_pred, k - 1)
        key = torch.mul(label.to(self.key_dtype), k).add_(pred.to(self.key_dtype))
        bins = k * k
        if visible is not None:  # points no camera sees go to one extra bin, dropped
            key = torch.where(visible, key, torch.full_like(key, bins))
        counts = torch.bincount(key, minlength=bins + 1)[:bins].view(k, k)
        counts[0] = 0  # ground truth 0 is never scored
        self.confmat += counts

    def compute(self) -> Score:  # type: ignore[override]
        return self.protocol.score_confusion(self.confmat.cpu().numpy())


def _check_range(t: Tensor, key: str, low: int, high: int) -> None:
    lo, hi = torch.aminmax(t)
    lo, hi = int(lo), int(hi)
    if lo < low or hi > high:
        raise ValueError(f"{key}: class ids must be in {low}..{high}; found values {lo}..{hi}")
