"""``baseline``: no objective term (the task loss alone)."""

from __future__ import annotations

from torch import Tensor

from mv2d_bench.objectives.base import Objective
from mv2d_bench.views import ViewOutputs


class Baseline(Objective):
    """No objective term: the model is trained with its task loss only.

    Used for the ablation rows "no bottleneck" and "bottleneck alone" of the paper's Tables 4
    and 7 (whether a bottleneck is present is a model setting, not an objective). Returns an empty
    dict, so it reads no ViewOutputs field. ``weight`` is accepted for a uniform interface and has
    nothing to scale.
    """

    name = "baseline"
    formula = "0 (no objective term; task loss only)"

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(weight=weight)

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        return {}
