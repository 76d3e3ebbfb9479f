"""Objectives, created by name through the ``mv2d_bench.objectives`` entry-point group.

Any ``torch.nn.Module`` subclass that follows the contract of
:mod:`mv2d_bench.objectives.contract` (``name``, ``needs`` or ``needs_for``, ``forward``) can be
registered; subclassing :class:`Objective` is the convenient way, not a requirement."""

from __future__ import annotations

from typing import Any

from torch import nn

from mv2d_bench.objectives.base import DistillationObjective, Objective, kl_from_logits
from mv2d_bench.objectives.contract import parameters_of
from mv2d_bench.registry import registry

__all__ = ["DistillationObjective", "Objective", "create", "get", "kl_from_logits", "names"]


def names() -> list[str]:
    return registry("objectives").names()


def get(name: str) -> type[nn.Module]:
    """The objective class registered under ``name`` (an Objective or any class following the
    contract)."""
    return registry("objectives").load(name)


class ObjectiveParameterError(ValueError, TypeError):
    """An objective parameter the objective does not take (a TypeError, as a wrong keyword
    argument is, and a ValueError: the command line reports it as bad input)."""


def create(name: str, **params: Any) -> nn.Module:
    """Instantiate the objective ``name`` with keyword hyper-parameters.

    Unknown parameters are an error that lists the ones the objective accepts (its
    ``parameters_doc()``, or its constructor's keyword parameters when it has none).
    """
    cls = get(name)
    accepted = parameters_of(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ObjectiveParameterError(
            f"objective {name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(f'{k}={v!r}' for k, v in accepted.items()) or 'nothing'}"
        )
    return cls(**params)
