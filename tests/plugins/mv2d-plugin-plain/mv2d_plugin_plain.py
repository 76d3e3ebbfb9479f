"""Objectives written against the contract alone: plain ``torch.nn.Module`` subclasses.

Nothing here imports mv2d_bench. ``plain-kl`` declares ``needs``; ``plain-center`` only has
``needs_for(n_views)``. The last three classes each lack one part of the contract on purpose
(``name``, ``needs``/``needs_for``, ``forward``): mv2d-bench must list them as broken, naming
what is missing, and keep everything else working.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PlainKL(nn.Module):
    """sum_i KL(P_Z || P_zi): the fused prediction distilled into each view's representation.

    Teacher detached; KL in nats from log_softmax(logits / temperature) of both sides, mean over
    the valid items (``outputs.mask``), summed over views, times ``weight``.
    """

    name = "plain-kl"
    needs = frozenset({"fused_logits", "rep_logits"})

    def __init__(self, temperature: float = 1.0, weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.weight = float(weight)

    def forward(self, outputs) -> dict[str, Tensor]:
        log_p = torch.log_softmax(outputs.fused_logits.detach() / self.temperature, dim=-1)
        total = log_p.new_zeros(())
        for student in outputs.rep_logits:
            log_q = torch.log_softmax(student / self.temperature, dim=-1)
            per_item = (log_p.exp() * (log_p - log_q)).sum(-1)
            if outputs.mask is not None:
                keep = outputs.mask.bool()
                per_item = per_item[keep] if bool(keep.any()) else per_item.new_zeros(1)
            total = total + per_item.mean()
        return {"plain_kl": self.weight * total}


class PlainCenter(nn.Module):
    """Pull every view's representation mean towards the views' average (n >= 2; 0 for n = 1)."""

    name = "plain-center"

    def __init__(self, weight: float = 0.1) -> None:
        super().__init__()
        self.weight = float(weight)

    def needs_for(self, n_views: int) -> frozenset[str]:
        return frozenset({"rep_mean"}) if n_views > 1 else frozenset()

    def forward(self, outputs) -> dict[str, Tensor]:
        means = outputs.rep_mean or []
        if len(means) < 2:
            return {"center": torch.zeros(())}
        stack = torch.stack(means)  # (views, items, d)
        spread = (stack - stack.mean(0, keepdim=True)).pow(2).sum(-1).mean()
        return {"center": self.weight * spread}


class NoName(nn.Module):
    needs = frozenset({"rep_logits"})

    def forward(self, outputs) -> dict[str, Tensor]:
        return {}


class NoNeeds(nn.Module):
    name = "plain-no-needs"

    def forward(self, outputs) -> dict[str, Tensor]:
        return {}


class NoForward(nn.Module):
    name = "plain-no-forward"
    needs = frozenset({"rep_logits"})
