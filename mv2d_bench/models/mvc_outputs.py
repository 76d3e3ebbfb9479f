"""What an MVC model returns: the objective's ViewOutputs plus the task's own tensors.

The standard :class:`~mv2d_bench.views.ViewOutputs` fields are what the *objective* reads. With
``distill_through_heads = false`` (the default: the paper's Eq. 9 trains only the encoders and
bottlenecks with the distillation terms) its logits (``obs_logits``, ``rep_logits``,
``fused_logits``, ``loo_logits``) come from the heads and the fusion with *detached* parameters:
the same values, but their gradient stops at the representations. The task's loss uses the
``task_*`` fields, computed with the live parameters; they are stacked per view for one batched
loss call.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from mv2d_bench.views import ViewOutputs


@dataclass
class MvcOutputs(ViewOutputs):
    obs_stack: Tensor | None = None
    """(n, B, d_v): the observations v_i stacked (a view, no copy, of ``obs``)."""
    rep_stack: Tensor | None = None
    """(n, B, d_z): the representations z_i stacked."""
    task_obs_logits: Tensor | None = None
    """(n, B, C): p(y | v_i) with live head parameters (the task's cross-entropy)."""
    task_rep_logits: Tensor | None = None
    """(n, B, C): p(y | z_i) with live heads; None without a bottleneck."""
    task_fused_logits: Tensor | None = None
    """(B, C): the fused prediction with live fusion parameters (loss and evaluation)."""
    task_view_logits: Tensor | None = None
    """(B, n, C): the fusion's per-view predictions (per-view-classifier fusions only)."""
