"""``mvc/accuracy@1``: the multi-view classification protocol of MvNNcor and the MV2D paper.

Each run splits every class 70/20/10 into train/val/test, trains, picks the epoch with the best
validation accuracy (the earliest one on ties, :meth:`MvcAccuracy.best_epoch`) and reports the
test accuracy of that epoch, in percent. A leaderboard entry is the mean and sample standard
deviation over five seeds. One run has one trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.leaderboards.protocols.base import Metric, Protocol, Score


class MvcAccuracy(Protocol):
    id: ClassVar[str] = "mvc/accuracy@1"
    benchmark: ClassVar[str] = "mvc"
    description: ClassVar[str] = (
        "Multi-view classification: test accuracy (%) at the best validation epoch of a per-class "
        "70/20/10 train/val/test split; mean and std over 5 seeds."
    )
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric(
            "accuracy",
            "max",
            0.0,
            100.0,
            "%",
            "test accuracy at the epoch with the best validation accuracy",
        ),
    )
    primary: ClassVar[str] = "accuracy"
    required_seeds: ClassVar[int] = 5
    trials: ClassVar[int] = 1
    npz_keys: ClassVar[dict[str, str]] = {
        "pred": "predicted class per test item: integer array (N,), or logits/probabilities "
        "(N, C) whose argmax is taken",
        "label": "true class per test item: integer array (N,), 0..C-1",
    }

    def score(self, **arrays: Any) -> Score:
        """Accuracy in percent of ``pred`` against ``label`` (see :attr:`npz_keys`)."""
        unknown = sorted(set(arrays) - set(self.npz_keys))
        missing = [k for k in self.npz_keys if k not in arrays]
        if missing or unknown:
            raise TypeError(
                f"{self.id}: score() takes pred and label; missing {missing or '-'}, "
                f"unexpected {unknown or '-'}"
            )
        label = _class_vector(arrays["label"], "label")
        pred = np.asarray(arrays["pred"])
        if pred.ndim == 2:
            if not np.issubdtype(pred.dtype, np.number) or np.issubdtype(pred.dtype, np.bool_):
                raise ValueError(f"pred: expected numeric logits (N, C), got dtype {pred.dtype}")
            if not np.all(np.isfinite(pred)):
                raise ValueError("pred: logits contain NaN or inf")
            if pred.shape[1] == 0:
                raise ValueError("pred: logits have zero classes (shape (N, 0))")
            pred = pred.argmax(axis=1)
        else:
            pred = _class_vector(pred, "pred")
        if pred.shape[0] != label.shape[0]:
            raise ValueError(
                f"pred has {pred.shape[0]} items but label has {label.shape[0]}; "
                "expected one prediction per test item"
            )
        if label.shape[0] == 0:
            raise ValueError("label: no test items (expected at least one)")
        accuracy = 100.0 * float(np.count_nonzero(pred == label)) / label.shape[0]
        metrics = {"accuracy": accuracy}
        return Score(metrics=metrics, per_trial=[dict(metrics)])

    @staticmethod
    def best_epoch(val_accuracy: Sequence[float]) -> int:
        """Index of the epoch whose validation accuracy is highest (the earliest on ties): the
        epoch whose test accuracy this protocol reports."""
        values = np.asarray(val_accuracy, dtype=float)
        if values.ndim != 1 or values.size == 0:
            raise ValueError("val_accuracy: expected a non-empty sequence, one value per epoch")
        if not np.all(np.isfinite(values)):
            raise ValueError("val_accuracy: contains NaN or inf")
        return int(np.argmax(values))


def _class_vector(values: Any, key: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{key}: expected a 1-D array of class indices, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating) and arr.size and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)  # whole-number floats (MATLAB habit)
    if arr.size == 0 and np.issubdtype(arr.dtype, np.number):
        return arr.astype(np.int64)
    raise ValueError(f"{key}: expected integer class indices, got dtype {arr.dtype}")
