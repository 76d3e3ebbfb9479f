"""Objectives, created by name through the ``mv2d_bench.objectives`` entry-point group."""

from __future__ import annotations

from typing import Any

from mv2d_bench.objectives.base import DistillationObjective, Objective, kl_from_logits
from mv2d_bench.registry import registry

__all__ = ["DistillationObjective", "Objective", "create", "get", "kl_from_logits", "names"]


def names() -> list[str]:
    return registry("objectives").names()


def get(name: str) -> type[Objective]:
    """The objective class registered under ``name``."""
    return registry("objectives").load(name)


def create(name: str, **params: Any) -> Objective:
    """Instantiate the objective ``name`` with keyword hyper-parameters.

    Unknown parameters are an error that lists the ones the objective accepts.
    """
    cls = get(name)
    accepted = cls.parameters_doc() if hasattr(cls, "parameters_doc") else None
    if accepted is not None:
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise TypeError(
                f"objective {name!r} has no parameter(s) {', '.join(unknown)}; "
                f"it accepts: {', '.join(f'{k}={v!r}' for k, v in accepted.items())}"
            )
    return cls(**params)
