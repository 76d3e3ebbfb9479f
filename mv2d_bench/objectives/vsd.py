"""``vsd``: variational self-distillation (the single-view case of MV2D)."""

from __future__ import annotations

import torch
from torch import Tensor

from mv2d_bench.objectives.base import DistillationObjective
from mv2d_bench.views import ViewOutputs


class VSD(DistillationObjective):
    """Variational self-distillation: each view's bottleneck mimics its own observation.

    For every view i the class distribution predicted from the representation, P_zi = p(y|z_i),
    is pulled towards the one predicted from the observation, P_vi = p(y|v_i) (the teacher,
    detached unless ``detach_teacher=False``)::

        vsd = weight * sum_i KL(P_vi || P_zi)

    KL in nats from ``log_softmax(logits / temperature)`` of both sides (no T^2 factor), averaged
    over the valid items (``ViewOutputs.mask``), summed over views. Defined for any n >= 1.
    """

    name = "vsd"
    needs = frozenset({"obs_logits", "rep_logits"})
    formula = "sum_i KL(P_vi || P_zi)"

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        pairs = zip(outputs.obs_logits, outputs.rep_logits, strict=True)
        kls = [self.kl(t, s, outputs, views=(i,)) for i, (t, s) in enumerate(pairs)]
        return {"vsd": torch.stack(kls).sum()}
