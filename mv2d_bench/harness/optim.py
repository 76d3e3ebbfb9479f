"""The optimiser and the learning-rate schedule of a run (``[train]``, contract 3).

- ``train.optimizer = "adam"`` (default; ``lr``, ``betas``, ``weight_decay``) or ``"sgd"``
  (``lr``, ``momentum``, ``nesterov``, ``weight_decay``). The fused kernels are used where
  torch has them for the device.
- ``train.schedule = "step"`` (default): the learning rate is multiplied by ``lr_gamma`` at the
  start of each epoch in ``lr_milestones``. ``"cosine"``: after the warm-up it follows
  ``0.5 * (1 + cos(pi * (epoch - warmup) / (epochs - warmup)))`` (torch's
  ``CosineAnnealingLR`` with ``eta_min = 0``, ``T_max = epochs - warmup``), one value per epoch;
  ``lr_milestones`` and ``lr_gamma`` are not used.
- ``train.warmup_epochs``: linear warm-up, ``(epoch + 1) / warmup`` times the schedule's factor
  over the first epochs, with either schedule; with ``train.warmup_start = s`` the warm-up
  factor is ``s + (1 - s) * epoch / warmup`` instead (``s`` at epoch 0; the ``warmup_factor`` of
  the WarmupMultiStepLR that ReID codes use).

The factor is a pure function of the epoch, so the schedule's position is the epoch itself.
"""

from __future__ import annotations

import math
from typing import Any

import torch

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("step", "cosine")


def lr_factor(
    epoch: int,
    milestones: list[int],
    gamma: float,
    warmup: int,
    schedule: str = "step",
    epochs: int = 0,
    warmup_start: float | None = None,
) -> float:
    """Learning-rate multiplier at the start of 0-based ``epoch`` (``epochs``: the run's
    length, needed by ``"cosine"``; ``warmup_start``: see the module docstring)."""
    if schedule == "step":
        factor = gamma ** sum(1 for m in milestones if epoch >= m)
    elif schedule == "cosine":
        span = epochs - warmup
        if span <= 0:
            raise ValueError(
                f"config: 'train.schedule' cosine needs train.epochs ({epochs}) > "
                f"train.warmup_epochs ({warmup})"
            )
        t = max(epoch - warmup, 0)
        factor = 0.5 * (1.0 + math.cos(math.pi * t / span))
    else:
        raise ValueError(
            f"config: 'train.schedule' must be one of {', '.join(SCHEDULES)}; got {schedule!r}"
        )
    if warmup > 0 and epoch < warmup:
        if warmup_start is None:
            factor *= (epoch + 1) / warmup
        else:
            factor *= warmup_start + (1.0 - warmup_start) * epoch / warmup
    return factor


def schedule_factor(epoch: int, train: Any) -> float:
    """:func:`lr_factor` for a ``TrainConfig``."""
    return lr_factor(
        epoch,
        train.lr_milestones,
        train.lr_gamma,
        train.warmup_epochs,
        train.schedule,
        train.epochs,
        getattr(train, "warmup_start", None),
    )


def make_optimizer(params: Any, train: Any) -> torch.optim.Optimizer:
    """The configured optimiser over ``params`` (a list of tensors or of param-group dicts)."""
    if train.optimizer == "adam":
        cls, kwargs = torch.optim.Adam, {"betas": tuple(train.betas)}
    elif train.optimizer == "sgd":
        cls, kwargs = torch.optim.SGD, {"momentum": train.momentum, "nesterov": train.nesterov}
    else:
        raise ValueError(
            f"config: 'train.optimizer' must be one of {', '.join(OPTIMIZERS)}; "
            f"got {train.optimizer!r}"
        )
    kwargs.update(lr=train.lr, weight_decay=train.weight_decay)
    params = list(params)
    try:  # one pass over all tensors (~3x faster for Adam on the CPU)
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # a device or torch without the fused kernel
        return cls(params, **kwargs)
