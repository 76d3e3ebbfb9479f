"""The objective contract: what any class registered as an objective must provide.

An objective is a ``torch.nn.Module`` subclass with

* ``name``: a non-empty string;
* ``needs`` (a set of :class:`~mv2d_bench.views.ViewOutputs` field names) or a method
  ``needs_for(n_views)`` returning one (or both: ``needs`` for a general n, ``needs_for`` when
  the set depends on n);
* ``forward(outputs) -> dict[str, Tensor]``: named, already weighted scalar terms.

Hyper-parameters are its constructor's keyword arguments. Subclassing
:class:`~mv2d_bench.objectives.base.Objective` is the convenient way (it adds ``weight``, the
field checks, ``parameters_doc`` and ``hparams``), but nothing here requires it: the helpers of
this module give every caller (registry, ``create``, config checking, the trainer, the ReID task,
``objectives show``) the same answers for a plain module that only follows the contract.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from mv2d_bench.views import FIELDS, ViewOutputs

CONTRACT = (
    "a torch.nn.Module subclass with 'name' (a non-empty string), 'needs' (a set of "
    "ViewOutputs field names) or 'needs_for(n_views)', and 'forward(outputs) -> dict[str, Tensor]'"
)


def contract_problems(obj: Any) -> list[str]:
    """What ``obj`` lacks to be an objective class (empty when it follows the contract)."""
    if not isinstance(obj, type):
        return [f"expected a class, got {type(obj).__name__} {obj!r:.60}"]
    if not issubclass(obj, nn.Module):
        return [f"expected a torch.nn.Module subclass, got {obj.__name__} (bases: {_bases(obj)})"]
    problems = []
    name = getattr(obj, "name", None)
    if name is None:
        problems.append("missing attribute 'name' (a non-empty string)")
    elif not isinstance(name, str) or not name:
        problems.append(f"attribute 'name' is {name!r}; expected a non-empty string")
    has_needs, has_needs_for = hasattr(obj, "needs"), callable(getattr(obj, "needs_for", None))
    if not has_needs and not has_needs_for:
        problems.append(
            "missing attribute 'needs' (a set of ViewOutputs field names) or method "
            "'needs_for(n_views)'"
        )
    elif has_needs:
        problems += _needs_problems(obj.needs)
    forward = getattr(obj, "forward", None)
    if forward is None or forward is nn.Module.forward:
        problems.append("missing method 'forward(outputs) -> dict[str, Tensor]'")
    elif not _takes_one_argument(forward):
        problems.append(
            f"method 'forward' has the signature {_signature(forward)}; expected "
            "forward(self, outputs)"
        )
    return problems


def check_objective_class(obj: Any) -> str | None:
    """The registry's check for the objectives group: None, or why ``obj`` is not usable."""
    problems = contract_problems(obj)
    if not problems:
        return None
    if len(problems) == 1 and problems[0].startswith("expected a"):
        return f"{problems[0]}; an objective is {CONTRACT}"
    return "; ".join(problems)


def _needs_problems(needs: Any) -> list[str]:
    if isinstance(needs, str) or not isinstance(needs, Iterable):
        return [f"attribute 'needs' is {needs!r}; expected a set of ViewOutputs field names"]
    unknown = sorted(str(n) for n in needs if n not in FIELDS)
    if unknown:
        return [
            f"attribute 'needs' names unknown ViewOutputs field(s) {', '.join(unknown)}; "
            f"known: {', '.join(FIELDS)}"
        ]
    return []


def _takes_one_argument(fn: Any) -> bool:
    try:
        inspect.signature(fn).bind(None, None)  # (self, outputs)
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): do not guess
        return True
    return True


def _signature(fn: Any) -> str:
    try:
        return f"forward{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return "forward(?)"


def _bases(cls: type) -> str:
    return ", ".join(f"{b.__module__}.{b.__qualname__}" for b in cls.__mro__[1:-1]) or "object"


# -- what callers ask of an objective class or instance -----------------------------------------
def parameters_of(cls: type) -> dict[str, Any]:
    """Constructor keyword parameters and their defaults (None where there is none).

    ``cls.parameters_doc()`` when the class has one (every :class:`Objective`), else read from
    the signature of its ``__init__``, the same way."""
    doc = getattr(cls, "parameters_doc", None)
    return dict(doc()) if callable(doc) else init_parameters(cls)


def init_parameters(cls: type) -> dict[str, Any]:
    """The keyword parameters of ``cls.__init__`` and their defaults (None where there is none)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        out[pname] = None if param.default is param.empty else param.default
    return out


def hparams_of(objective: nn.Module) -> dict[str, Any]:
    """The resolved hyper-parameters of an instance (for run records).

    ``objective.hparams()`` when it has one; else each constructor parameter's attribute of the
    same name, or its default where the instance keeps no such attribute."""
    method = getattr(objective, "hparams", None)
    if callable(method):
        return dict(method())
    out = {}
    for key, default in parameters_of(type(objective)).items():
        value = getattr(objective, key, default)
        try:
            json.dumps(value)
        except (TypeError, ValueError):  # a module or tensor attribute of the same name
            value = default
        out[key] = value
    return out


def needs_of(objective: Any, n_views: int | None = None) -> frozenset[str]:
    """The ViewOutputs fields ``objective`` (a class or an instance) reads with ``n_views`` views.

    ``needs_for(n_views)`` when n is known and the instance has it, else ``needs`` (empty when a
    class only has ``needs_for``: the set is then only known per instance and n)."""
    needs_for = getattr(objective, "needs_for", None)
    if n_views is not None and callable(needs_for) and not isinstance(objective, type):
        return frozenset(needs_for(n_views))
    return frozenset(getattr(objective, "needs", ()))


def bind_objective(objective: nn.Module, *, obs_dims: list[int], rep_dims: list[int]) -> None:
    """Call ``objective.bind(obs_dims=..., rep_dims=...)`` where it has such a hook."""
    bind = getattr(objective, "bind", None)
    if callable(bind):
        bind(obs_dims=obs_dims, rep_dims=rep_dims)


def call_objective(objective: nn.Module, outputs: ViewOutputs) -> dict[str, Tensor]:
    """``objective(outputs)``, checked: a dict of string names to scalar tensors.

    A plugin that returns anything else gets an error naming it and what it returned, instead
    of a failure somewhere in the loss sum."""
    terms = objective(outputs)
    owner = getattr(objective, "name", "") or type(objective).__name__
    if not isinstance(terms, dict):
        raise TypeError(
            f"objective {owner!r}: forward returned {type(terms).__name__}; expected a dict of "
            "named scalar tensors"
        )
    for key, value in terms.items():
        if not isinstance(key, str) or not isinstance(value, Tensor) or value.dim() != 0:
            got = type(value).__name__
            if isinstance(value, Tensor):
                got = f"a tensor of shape {list(value.shape)}"
            raise TypeError(
                f"objective {owner!r}: forward returned term {key!r} = {got}; expected a dict "
                "of named scalar (0-dim) tensors"
            )
    return terms
