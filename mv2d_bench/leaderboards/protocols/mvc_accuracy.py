"""``mvc/accuracy@1``: the multi-view classification protocol of MvNNcor and the MV2D paper.

Each run splits every class 70/20/10 into train/val/test, trains, picks the epoch with the best
validation accuracy (the earliest one on ties, :meth:`Protocol.best_epoch`) and reports the
test accuracy of that epoch, in percent. A leaderboard entry is the mean and sample standard
deviation over five seeds. One run has one trial.
"""

from __future__ import annotations

from typing import ClassVar

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
