"""``mvc/accuracy@1``: the multi-view classification protocol of MvNNcor and the MV2D paper.

Each run splits every class 70/20/10 into train/val/test, trains, picks the epoch with the best
validation accuracy (the earliest one on ties, :meth:`Protocol.best_epoch`) and reports the
test accuracy of that epoch, in percent. A leaderboard entry is the mean and sample standard
deviation over five seeds. One run has one trial.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mv2d_bench.leaderboards.protocols.base import Metric, Protocol


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
    metric_class: ClassVar[str] = "mv2d_bench.leaderboards.metrics.accuracy:AccuracyMetric"
    """Sum states correct / total; ``accuracy`` = 100 * correct / total."""
    npz_keys: ClassVar[dict[str, str]] = {
        "pred": "predicted class per test item: integer array (N,), or logits/probabilities "
        "(N, C) whose argmax is taken",
        "label": "true class per test item: integer array (N,), 0..C-1",
    }

    def validate_inputs(self, arrays: dict[str, Any]) -> None:
        """Refuse what cannot be an accuracy (checked on a predictions file before scoring):
        labels that are not class indices 0..C-1 (C = the number of logit columns when ``pred``
        holds logits), negative predicted classes, non-finite logits, and ``pred`` / ``label``
        of different lengths."""
        label = _class_indices(arrays["label"], "label")
        pred = np.asarray(arrays["pred"])
        if pred.ndim == 2:
            if not np.issubdtype(pred.dtype, np.number) or np.issubdtype(pred.dtype, np.bool_):
                raise ValueError(f"key 'pred': expected numeric logits (N, C), got {pred.dtype}")
            if not np.all(np.isfinite(pred)):
                raise ValueError("key 'pred': logits contain NaN or inf; expected finite values")
            n_classes = pred.shape[1]
            if label.size and label.max() >= n_classes:
                raise ValueError(
                    f"key 'pred': logits have {n_classes} class column(s), but key 'label' "
                    f"holds class {int(label.max())}; expected labels in 0..{n_classes - 1} "
                    "(one logit column per class)"
                )
        else:
            pred = _class_indices(pred, "pred")
        if pred.shape[0] != label.shape[0]:
            raise ValueError(
                f"key 'pred' has {pred.shape[0]} items but key 'label' has {label.shape[0]}; "
                "expected one prediction per test item"
            )
        if label.shape[0] == 0:
            raise ValueError("key 'label': no test items (expected at least one)")


def _class_indices(values: Any, key: str) -> np.ndarray:
    """A 1-D array of non-negative whole numbers (integers, or whole-number floats)."""
    arr = np.asarray(values)
    expected = "a 1-D array of class indices 0..C-1"
    if arr.ndim != 1:
        raise ValueError(f"key {key!r}: expected {expected}, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(arr == np.round(arr))):
        raise ValueError(f"key {key!r}: expected {expected}, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"key {key!r}: class {int(arr.min())} is negative; expected {expected}")
    return arr
