"""Classification accuracy as two sum states (correct, total): the metric of ``mvc/accuracy@1``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mv2d_bench.leaderboards.metrics.base import ProtocolMetric
from mv2d_bench.leaderboards.protocols.base import Score


class AccuracyMetric(ProtocolMetric):
    """``update(pred=..., label=...)``: ``pred`` class indices (N,) or logits (N, C) (argmax);
    ``label`` class indices (N,). ``compute()``: ``accuracy`` = 100 * correct / total.

    No host synchronisation per batch for integer inputs on any device: non-finite logits are
    counted in a state and reported by ``compute()``.
    """

    def __init__(self, protocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.add_state("correct", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("nonfinite", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, **arrays: Any) -> None:
        keys = self.protocol.npz_keys
        unknown = sorted(set(arrays) - set(keys))
        missing = [k for k in keys if k not in arrays]
        if missing or unknown:
            raise TypeError(
                f"{self.protocol.id}: update() takes pred and label; missing {missing or '-'}, "
                f"unexpected {unknown or '-'}"
            )
        label = class_vector(arrays["label"], "label", self)
        pred = arrays["pred"]
        ndim = pred.ndim if isinstance(pred, torch.Tensor) else np.ndim(pred)
        if ndim == 2:
            logits = self._logits(pred)
            if logits.shape[1] == 0:
                raise ValueError("pred: logits have zero classes (shape (N, 0))")
            pred = logits.argmax(dim=1)
        else:
            pred = class_vector(pred, "pred", self)
        if pred.shape[0] != label.shape[0]:
            raise ValueError(
                f"pred has {pred.shape[0]} items but label has {label.shape[0]}; "
                "expected one prediction per test item"
            )
        self.correct += (pred.to(label.device) == label).sum().to(self.correct.device)
        self.total += label.shape[0]

    def _logits(self, pred: Any) -> torch.Tensor:
        if isinstance(pred, torch.Tensor):
            if not (pred.dtype.is_floating_point or _is_int(pred.dtype)):
                raise ValueError(f"pred: expected numeric logits (N, C), got dtype {pred.dtype}")
            logits = pred.detach()
            if logits.dtype.is_floating_point:
                bad = (~torch.isfinite(logits)).sum()
                self.nonfinite += bad.to(self.nonfinite.device)
            return logits
        arr = np.asarray(pred)
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
            raise ValueError(f"pred: expected numeric logits (N, C), got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("pred: logits contain NaN or inf")
        return self.as_tensor(arr)

    def compute(self) -> Score:
        if int(self.nonfinite) > 0:
            raise ValueError("pred: logits contain NaN or inf")
        total = int(self.total)
        if total == 0:
            raise ValueError("label: no test items (expected at least one)")
        accuracy = 100.0 * float(int(self.correct)) / total
        metrics = {"accuracy": accuracy}
        return Score(metrics=metrics, per_trial=[dict(metrics)])


def _is_int(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


def class_vector(values: Any, key: str, metric: ProtocolMetric) -> torch.Tensor:
    """A 1-D int64 tensor of class indices; whole-number floats are accepted (MATLAB habit)."""
    if isinstance(values, torch.Tensor):
        t = values.detach()
        if t.ndim != 1:
            raise ValueError(
                f"{key}: expected a 1-D array of class indices, got shape {tuple(t.shape)}"
            )
        if _is_int(t.dtype):
            return t.long()
        if t.dtype.is_floating_point and (t.numel() == 0 or bool(torch.equal(t, t.round()))):
            return t.long()
        raise ValueError(f"{key}: expected integer class indices, got dtype {t.dtype}")
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{key}: expected a 1-D array of class indices, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        return metric.as_tensor(arr.astype(np.int64))
    if np.issubdtype(arr.dtype, np.floating) and arr.size and np.all(arr == np.round(arr)):
        return metric.as_tensor(arr.astype(np.int64))
    if arr.size == 0 and np.issubdtype(arr.dtype, np.number):
        return metric.as_tensor(arr.astype(np.int64))
    raise ValueError(f"{key}: expected integer class indices, got dtype {arr.dtype}")
