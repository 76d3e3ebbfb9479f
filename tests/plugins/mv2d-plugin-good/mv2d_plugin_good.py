"""``good-kl``: distil the fused prediction into every view's representation head.

Loss = sum_i KL(P_Z || P_zi): the teacher is the fused distribution p(y | z_1..z_n), detached
unless ``detach_teacher=False``; mean over valid items, summed over views.
"""

from __future__ import annotations

from torch import Tensor

from mv2d_bench.objectives import DistillationObjective
from mv2d_bench.views import ViewOutputs


class GoodKL(DistillationObjective):
    """Fused-to-view distillation, a small objective that lives outside mv2d-bench."""

    name = "good-kl"
    needs = frozenset({"fused_logits", "rep_logits"})
    formula = "sum_i KL(P_Z || P_zi)"

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        total = sum(self.kl(outputs.fused_logits, s, outputs) for s in outputs.rep_logits)
        return {"fused_to_view": total}
