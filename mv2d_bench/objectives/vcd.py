"""``vcd``: variational cross-distillation."""

from __future__ import annotations

import torch
from torch import Tensor

from mv2d_bench.objectives.base import DistillationObjective
from mv2d_bench.views import ViewOutputs


class VCD(DistillationObjective):
    """Variational cross-distillation: each bottleneck mimics the *other* views' observations.

    For view i the representation's class distribution P_zi is pulled towards P_vj = p(y|v_j) of
    every other view j (teachers, detached unless ``detach_teacher=False``), averaged over j::

        vcd = weight * sum_i mean_{j != i} KL(P_vj || P_zi)

    With two views this is the paper's KL(P_v2 || P_z1) + KL(P_v1 || P_z2). KL in nats from
    ``log_softmax(logits / temperature)`` of both sides (no T^2 factor), averaged over the valid
    items. Needs n >= 2 views; fewer is an error.
    """

    name = "vcd"
    needs = frozenset({"obs_logits", "rep_logits"})
    formula = "sum_i mean_{j!=i} KL(P_vj || P_zi)   (n=2: KL(P_v2||P_z1) + KL(P_v1||P_z2))"
    min_views = 2

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        teachers, students = outputs.obs_logits, outputs.rep_logits
        n = len(students)
        per_view = []
        for i in range(n):  # student P_zi, averaged over the teachers j != i
            kls = [
                self.kl(teachers[j], students[i], outputs, views=(i, j)) for j in range(n) if j != i
            ]
            per_view.append(torch.stack(kls).mean())
        return {"vcd": torch.stack(per_view).sum()}
