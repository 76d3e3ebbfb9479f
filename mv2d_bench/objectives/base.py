"""The Objective base class and the KL term every distillation objective shares."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mv2d_bench.objectives.contract import init_parameters
from mv2d_bench.views import PER_VIEW_FIELDS, ViewOutputs, cat_views


def kl_from_logits(
    teacher_logits: Tensor,
    student_logits: Tensor,
    temperature: float = 1.0,
    mask: Tensor | None = None,
    detach_teacher: bool = True,
) -> Tensor:
    """KL(p_teacher || p_student) in nats, averaged over valid items.

    Both sides go through ``log_softmax(logits / temperature)`` (no T^2 factor), so this is a true
    KL divergence, unlike ``F.kl_div`` fed probabilities. ``mask`` is a bool tensor over items; the
    mean is over the items where it is True (0 when none are).
    """
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits "
            f"{tuple(student_logits.shape)} must have the same shape (items, classes)"
        )
    return masked_mean(
        kl_per_item(teacher_logits, student_logits, temperature, detach_teacher), mask
    )


def kl_per_item(
    teacher_logits: Tensor,
    student_logits: Tensor,
    temperature: float = 1.0,
    detach_teacher: bool = True,
) -> Tensor:
    """KL(p_teacher || p_student) in nats for every item (row), shape (items,)."""
    if detach_teacher:
        teacher_logits = teacher_logits.detach()
    teacher_logits, student_logits = teacher_logits.float(), student_logits.float()
    if temperature != 1.0:  # x / 1.0 is x: skip the two divisions (and their backward)
        teacher_logits, student_logits = teacher_logits / temperature, student_logits / temperature
    log_p = torch.log_softmax(teacher_logits, dim=-1)
    log_q = torch.log_softmax(student_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def masked_mean(per_item: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``per_item`` over the items where ``mask`` is True (0 when none are)."""
    if mask is None:
        return per_item.mean()
    mask = mask.to(device=per_item.device, dtype=torch.bool)
    if mask.shape != per_item.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected {tuple(per_item.shape)}")
    count = mask.sum().clamp(min=1)
    return torch.where(mask, per_item, torch.zeros_like(per_item)).sum() / count


class Objective(nn.Module):
    """An information-bottleneck objective.

    Subclasses set ``name``, ``needs`` (the ViewOutputs fields they read), ``formula`` (one line,
    shown by ``mv2d-bench objectives show``) and implement :meth:`terms`. Hyper-parameters are
    constructor keyword arguments; :meth:`forward` checks the fields and returns a dict of named,
    already weighted scalar terms.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    needs: ClassVar[frozenset[str]] = frozenset()
    formula: ClassVar[str] = ""
    min_views: ClassVar[int] = 1

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    @classmethod
    def parameters_doc(cls) -> dict[str, Any]:
        """Constructor hyper-parameters and their defaults."""
        return init_parameters(cls)

    def hparams(self) -> dict[str, Any]:
        """The resolved hyper-parameters of this instance (for run records)."""
        return {k: getattr(self, k, v) for k, v in self.parameters_doc().items()}

    def needs_for(self, n_views: int) -> frozenset[str]:
        """The fields this objective reads when the model has ``n_views`` views.

        Defaults to the class attribute ``needs`` (which is what ``objectives list`` shows, the
        fields needed for a general n). Override when the set depends on n, as MV2D does: with
        one view it has no leave-one-out term and reads neither ``fused_logits`` nor
        ``loo_logits``.
        """
        return self.needs

    def bind(self, *, obs_dims: list[int], rep_dims: list[int]) -> None:
        """Hook for objectives with parameters of their own whose shapes depend on the model.

        The harness calls it once, before it builds the optimiser, with the per-view observation
        and representation widths, so that every parameter exists when the optimiser collects
        them. A no-op for objectives without parameters.
        """

    def check(self, outputs: ViewOutputs) -> None:
        """Raise if a needed field is missing, lists disagree in length, or n is too small."""
        owner = self.name or type(self).__name__
        if not self.needs:
            return
        n = self._count_views(outputs)
        if n is None:  # no per-view field this objective reads is set
            outputs.require(owner, sorted(self.needs))  # raises, naming the missing fields
            n = outputs.n_views
        if n < self.min_views:
            raise ValueError(
                f"objective {owner!r} needs at least {self.min_views} views; got {n}"
                + (" (use 'vsd' for a single view)" if self.min_views == 2 else "")
            )
        needed = self.needs_for(n)
        outputs.require(owner, sorted(needed))
        for field_name in sorted(needed & set(PER_VIEW_FIELDS)):
            got = len(getattr(outputs, field_name))
            if got != n:
                raise ValueError(
                    f"objective {owner!r}: ViewOutputs.{field_name} has {got} entries; "
                    f"expected one per view ({n})"
                )

    def _count_views(self, outputs: ViewOutputs) -> int | None:
        for field_name in PER_VIEW_FIELDS:  # loo_logits comes last: it may be absent for n = 1
            if field_name in self.needs and getattr(outputs, field_name):
                return len(getattr(outputs, field_name))
        return None

    def forward(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        self.check(outputs)
        return {k: self.weight * v for k, v in self.terms(outputs).items()}

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        """Unweighted named scalar terms. Override."""
        raise NotImplementedError


class DistillationObjective(Objective):
    """Objectives made of KL terms between predicted class distributions."""

    def __init__(
        self, weight: float = 1.0, temperature: float = 1.0, detach_teacher: bool = True
    ) -> None:
        super().__init__(weight=weight)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        self.temperature = float(temperature)
        self.detach_teacher = bool(detach_teacher)

    def kl(
        self,
        teacher: Tensor,
        student: Tensor,
        outputs: ViewOutputs,
        views: tuple[int, ...] = (),
        mask: Tensor | None = None,
    ) -> Tensor:
        """KL(teacher || student) averaged over the valid items that every view in ``views``
        sees (``outputs.view_mask(*views)``), or over ``mask`` when one is given."""
        if mask is None:
            mask = outputs.view_mask(*views)
        return kl_from_logits(teacher, student, self.temperature, mask, self.detach_teacher)

    def kl_sum(
        self,
        teachers: list[Tensor],
        students: list[Tensor],
        outputs: ViewOutputs,
        masks: list[Tensor | None] | None = None,
    ) -> Tensor:
        """sum_i KL(teachers[i] || students[i]) in one batched call.

        Without presence (``outputs.present`` is None) every pair has the same items and mask, so
        the mean over the concatenation times the count is the sum of the means. With presence,
        pair i is averaged over its own ``masks[i]`` (default: ``outputs.view_mask(i)``) and the
        per-pair means are summed (a pair with no item contributes 0).
        """
        if len(teachers) != len(students) or not teachers:
            raise ValueError(f"kl_sum: {len(teachers)} teachers for {len(students)} students")
        t, s = cat_views(teachers), cat_views(students)
        if outputs.present is None and masks is None:
            mask = outputs.valid()
            if mask is not None:
                mask = mask.repeat(len(teachers))
            kl = kl_from_logits(t, s, self.temperature, mask, self.detach_teacher)
            return len(teachers) * kl
        if masks is None:
            masks = [outputs.view_mask(i) for i in range(len(teachers))]
        n, items = len(teachers), teachers[0].shape[0]
        per_item = kl_per_item(t, s, self.temperature, self.detach_teacher).view(n, items)
        total = per_item.new_zeros(())
        for k, m in enumerate(masks):
            total = total + masked_mean(per_item[k], m)
        return total
