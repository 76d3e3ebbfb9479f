"""``mv2d``: multi-view variational distillation (the paper's objective)."""

from __future__ import annotations

from torch import Tensor

from mv2d_bench.objectives.base import DistillationObjective
from mv2d_bench.views import ViewOutputs


class MV2D(DistillationObjective):
    """Multi-view variational distillation, for any number of views.

    Two terms, returned separately so both are logged:

    * ``sufficiency`` = weight * sum_i KL(P_vi || P_zi): each bottleneck keeps what its own
      observation knows about y (teacher P_vi = p(y|v_i));
    * ``consistency`` = weight * sum_i KL(P_Z || P_Z\\i): the prediction from all views but i
      (``loo_logits[i]``) mimics the prediction from all views (``fused_logits``, the teacher).

    Teachers are detached unless ``detach_teacher=False``. KL in nats from
    ``log_softmax(logits / temperature)`` of both sides (no T^2 factor), averaged over the valid
    items, summed over views.

    With one view there is no leave-one-out prediction: only ``sufficiency`` is returned, MV2D
    equals VSD exactly (the paper's Corollary 2), and ``fused_logits``/``loo_logits`` are not
    read (:meth:`needs_for` drops them for n = 1; the class attribute ``needs`` lists the fields
    for n >= 2).
    """

    name = "mv2d"
    needs = frozenset({"obs_logits", "rep_logits", "fused_logits", "loo_logits"})
    formula = "sum_i KL(P_vi || P_zi) + sum_i KL(P_Z || P_Z\\i)   (n=1: the first sum only = VSD)"

    def needs_for(self, n_views: int) -> frozenset[str]:
        if n_views == 1:
            return frozenset({"obs_logits", "rep_logits"})
        return self.needs

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        out = {"sufficiency": self.kl_sum(outputs.obs_logits, outputs.rep_logits, outputs)}
        if len(outputs.rep_logits) > 1:
            teachers = [outputs.fused_logits] * len(outputs.loo_logits)
            masks = None
            if outputs.present is not None:
                masks = [outputs.loo_mask(i) for i in range(len(outputs.loo_logits))]
            out["consistency"] = self.kl_sum(teachers, outputs.loo_logits, outputs, masks)
        return out
