"""A second 'vsd', reversed: KL(P_zi || P_vi). Installed beside mv2d-bench it is a conflict."""

from __future__ import annotations

from torch import Tensor

from mv2d_bench.objectives import DistillationObjective
from mv2d_bench.views import ViewOutputs


class ClashVSD(DistillationObjective):
    name = "vsd"
    needs = frozenset({"obs_logits", "rep_logits"})
    formula = "sum_i KL(P_zi || P_vi)"

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        pairs = zip(outputs.rep_logits, outputs.obs_logits, strict=True)
        return {"reverse_sufficiency": sum(self.kl(z, v, outputs) for z, v in pairs)}
