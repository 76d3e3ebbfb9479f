"""``vmd``: variational mutual-learning distillation."""

from __future__ import annotations

import torch
from torch import Tensor

from mv2d_bench.objectives.base import DistillationObjective
from mv2d_bench.views import ViewOutputs


class VMD(DistillationObjective):
    """Variational mutual distillation: the views' bottlenecks mimic each other.

    For view i the representation's class distribution P_zi is pulled towards P_zj of every other
    view j, averaged over j. The teacher P_zj is detached unless ``detach_teacher=False`` (then
    each pair also pushes the teacher)::

        vmd = weight * sum_i mean_{j != i} KL(P_zj || P_zi)

    With two views this is the paper's KL(P_z2 || P_z1) + KL(P_z1 || P_z2). KL in nats from
    ``log_softmax(logits / temperature)`` of both sides (no T^2 factor), averaged over the valid
    items. Needs n >= 2 views; fewer is an error.
    """

    name = "vmd"
    needs = frozenset({"rep_logits"})
    formula = "sum_i mean_{j!=i} KL(P_zj || P_zi)   (n=2: KL(P_z2||P_z1) + KL(P_z1||P_z2))"
    min_views = 2

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        reps = outputs.rep_logits
        n = len(reps)
        per_view = []
        for i in range(n):  # student P_zi, averaged over the teachers j != i
            kls = [self.kl(reps[j], reps[i], outputs, views=(i, j)) for j in range(n) if j != i]
            per_view.append(torch.stack(kls).mean())
        return {"vmd": torch.stack(per_view).sum()}
