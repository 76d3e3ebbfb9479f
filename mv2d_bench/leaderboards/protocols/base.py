"""The Protocol contract: a versioned official evaluation.

A protocol has an id ``<benchmark>/<setting>@<version>``, the metrics it reports with their
direction and range, how many independent runs (seeds) a leaderboard entry needs, how many trials
one run is scored over (ten sampled galleries for SYSU-MM01, one otherwise), the npz keys that
``mv2d-bench score`` reads, and its metric.

Evaluation streams: :meth:`Protocol.metric` (no argument) returns a fresh ``torchmetrics.Metric``
(:mod:`mv2d_bench.leaderboards.metrics`): ``update(**arrays)`` per batch, ``compute()`` once,
returning the :class:`Score`; its states are synced across processes, so N processes give the
numbers of one. :meth:`Protocol.score` is the whole-split function, defined as reset -> one
``update`` with all arrays -> ``compute`` (one code path for offline and in-run scoring).
Protocols whose score needs the whole split at once (ReID) keep their exact engine in
:meth:`Protocol.score_split`, which their cat-state metric calls after gathering. Protocol code
is device-agnostic: it follows the tensors it is given.

Model selection (:meth:`Protocol.best_epoch`): the epoch whose validation value of the
:attr:`Protocol.primary` metric is best in that metric's direction; ties go to the earliest.

Trials come in two kinds:

* Trials scored within one run (:attr:`Protocol.trials`; SYSU-MM01: ten sampled galleries). The
  record's ``per_trial`` holds one entry per trial (``trial`` = 1..T) and its ``metrics`` are
  their mean. ``benchmark.trial`` is null.
* Split trials (:attr:`Protocol.required_trials`; RegDB: ten train/test splits): every trial is
  its own training run on its own split. A record is one (seed, trial) run: ``benchmark.trial``
  is the trial and ``per_trial`` holds that one trial (``trials = 1``). ``trial_scope`` is then
  ``"split"`` (otherwise ``"run"``).

A leaderboard entry needs :attr:`Protocol.required_seeds` independent runs (records with
distinct (seed, trial)) and, for split trials, a run of every trial in ``required_trials``.
Its mean and sample std (ddof=1) are taken over its runs; for split trials over the trials
(the runs of one trial, e.g. several seeds, are averaged first, so each trial weighs the same).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str = "max"  # "max": higher is better; "min": lower is better
    low: float = 0.0
    high: float = 100.0
    unit: str = "%"
    description: str = ""
    optional: bool = False
    """Added after the protocol's first records were written: a record without it stays valid
    (and a leaderboard reports it only where every run has it); new scores report it."""

    def in_range(self, value: Any) -> bool:
        """True for a finite number (not a bool) within [low, high]."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return math.isfinite(value) and self.low <= value <= self.high

    def expected(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"a finite number in [{self.low:g}, {self.high:g}]{unit}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "direction": self.direction,
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "description": self.description,
            **({"optional": True} if self.optional else {}),
        }


@dataclass
class Score:
    """What :meth:`Protocol.score` returns: the run's metrics (the mean over its trials) and the
    metrics of each trial (a single entry when the protocol has one trial)."""

    metrics: dict[str, float]
    per_trial: list[dict[str, float]] = field(default_factory=list)

    def record_fields(self, trial: int | None = None) -> dict[str, Any]:
        """The ``metrics`` and ``per_trial`` fields of a run record.

        ``trial`` is the record's ``benchmark.trial`` for a ``"split"`` protocol (the one trial
        this run is); leave it None for a ``"run"`` protocol, whose trials are numbered 1..T.
        """
        per = self.per_trial or [dict(self.metrics)]
        if trial is not None:
            if len(per) != 1:
                raise ValueError(
                    f"a run of trial {trial} must have exactly one per-trial score, got {len(per)}"
                )
            trials = [{"trial": int(trial), "metrics": dict(per[0])}]
        else:
            trials = [{"trial": i + 1, "metrics": dict(m)} for i, m in enumerate(per)]
        return {"metrics": dict(self.metrics), "per_trial": trials}


class Protocol:
    id: ClassVar[str] = ""
    benchmark: ClassVar[str] = ""
    """The benchmark this protocol scores, or the family ("mvc") for a family-wide protocol."""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[Metric, ...]] = ()
    primary: ClassVar[str] = ""
    """The metric that ranks a leaderboard."""
    required_seeds: ClassVar[int] = 1
    """Independent runs a leaderboard entry needs before it is ranked (records with distinct
    (seed, trial); MVC: 5 seeds, RegDB: 10, one per split trial)."""
    trials: ClassVar[int] = 1
    """Trials one run is scored over (and averaged): its record's ``per_trial`` has this many."""
    required_trials: ClassVar[tuple[int, ...]] = ()
    """Split trials (each its own run, ``benchmark.trial``) a leaderboard entry needs; empty when
    the protocol has none (``benchmark.trial`` is then null)."""
    npz_keys: ClassVar[dict[str, str]] = {}
    """Keys ``mv2d-bench score`` reads from the predictions file, with what each holds."""
    metric_class: ClassVar[type | str | None] = None
    """The ``torchmetrics.Metric`` subclass :meth:`metric` builds (constructed with the protocol
    as its first argument), or its ``"module:Class"`` path (imported on first use: importing
    torchmetrics takes seconds, and commands that only read protocol metadata skip it)."""
    dataset_index_keys: ClassVar[dict[str, str]] = {}
    """Cat-state protocols: item group -> the ``update`` key of the items' dataset index (used
    to drop duplicates and restore dataset order; see ``metrics.items``)."""
    required_splits: ClassVar[int] = 1
    """Distinct splits one leaderboard entry spans (each with every required seed): 1 for
    protocols whose entries live on one split; mvc/accuracy@2: the data card's 5."""
    statistics: ClassVar[str] = "mean-std"
    """How a leaderboard summarises and ranks entries: "mean-std" (mean, sample std; equal means
    share a rank) or "paired" (also a 95 % CI, paired differences to the best entry and paired
    t-test p-values; entries not significantly worse than the best share rank 1)."""

    @property
    def trial_scope(self) -> str:
        """``"split"`` when each trial is its own run (:attr:`required_trials`), else ``"run"``."""
        return "split" if self.required_trials else "run"

    @property
    def version(self) -> int:
        return int(self.id.rsplit("@", 1)[1])

    @property
    def family_id(self) -> str:
        """The id without its version: two protocols compare only when these and versions match."""
        return self.id.rsplit("@", 1)[0]

    def metric(self, name: str | None = None, **kwargs: Any) -> Any:
        """Without ``name``: a fresh streaming metric (a ``torchmetrics.Metric``; ``kwargs`` go
        to its constructor, e.g. ``process_group``). With ``name``: that metric's descriptor
        (:meth:`metric_spec`)."""
        if name is not None:
            return self.metric_spec(name)
        cls = self.metric_class
        if cls is None:
            raise NotImplementedError(f"protocol {self.id} declares no metric_class")
        if isinstance(cls, str):
            module, _, name = cls.partition(":")
            cls = getattr(importlib.import_module(module), name)
        return cls(self, **kwargs)

    @classmethod
    def metric_spec(cls, name: str) -> Metric:
        """The descriptor (:class:`Metric`: direction, range, unit) of the metric ``name``."""
        for m in cls.metrics:
            if m.name == name:
                return m
        raise KeyError(f"protocol {cls.id} has no metric {name!r}")

    @property
    def primary_metric(self) -> Metric:
        return self.metric_spec(self.primary)

    @classmethod
    def best_epoch(cls, values: Sequence[float | None]) -> int:
        """The index of the best of ``values`` (one per epoch; None for an epoch that was not
        validated) in the primary metric's direction; ties go to the earliest epoch. The one
        model-selection rule of every run."""
        seq = list(values)
        given = [(i, v) for i, v in enumerate(seq) if v is not None]
        if not given:
            raise ValueError(
                "values: expected a non-empty sequence with at least one validated epoch"
            )
        for i, v in given:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"values: epoch index {i} holds {v!r}, expected a finite number")
        sign = -1.0 if cls.metric_spec(cls.primary).direction == "min" else 1.0
        best_i, best_v = given[0]
        for i, v in given[1:]:
            if sign * v > sign * best_v:
                best_i, best_v = i, v
        return best_i

    def metric_problems(self, metrics: Any) -> list[tuple[str, str]]:
        """(metric name, what was expected) for each declared metric that is missing, not a
        number, not finite or out of its range in ``metrics`` (a name -> value mapping)."""
        if not isinstance(metrics, dict):
            return [("", "an object of metric name -> number")]
        problems = []
        for m in self.metrics:
            if m.name not in metrics:
                if not m.optional:
                    problems.append((m.name, f"missing; protocol {self.id} reports {m.expected()}"))
                continue
            value = metrics[m.name]
            if not m.in_range(value):
                problems.append((m.name, f"{value!r} is not {m.expected()}"))
        return problems

    def describe(self) -> dict[str, Any]:
        """Static facts (for leaderboards and ``--help``)."""
        return {
            "id": self.id,
            "benchmark": self.benchmark,
            "description": self.description,
            "metrics": [m.as_dict() for m in self.metrics],
            "primary": self.primary,
            "direction": self.primary_metric.direction if self.primary else "max",
            "required_seeds": self.required_seeds,
            "trials": self.trials,
            "required_trials": list(self.required_trials),
            "trial_scope": self.trial_scope,
            "required_splits": self.required_splits,
            "statistics": self.statistics,
            "npz_keys": dict(self.npz_keys),
        }

    def score(self, **arrays: Any) -> Score:
        """The whole split's score: reset -> ``update(**arrays)`` -> ``compute()``."""
        metric = self.metric()
        metric.update(**arrays)
        return metric.compute()

    def score_split(self, **arrays: Any) -> Score:
        """Cat-state protocols: the exact engine over a complete split, in dataset order."""
        raise NotImplementedError(f"protocol {self.id} has no whole-split engine")

    def validate_inputs(self, arrays: dict[str, np.ndarray]) -> None:
        """Raise ValueError (naming the key) for arrays this protocol cannot score; called on
        every predictions file before scoring. The base class accepts anything."""

    def read_npz(self, path: str) -> dict[str, np.ndarray]:
        """The arrays of a predictions file (:attr:`npz_keys`, plus the optional keys present),
        checked by :meth:`validate_inputs`; every problem names the file and the key."""
        from mv2d_bench.leaderboards.predictions import PredictionsError, read_predictions

        optional = getattr(self, "optional_npz_keys", None) or {}
        arrays = read_predictions(path, list(self.npz_keys), list(optional), self.id)
        try:
            self.validate_inputs(arrays)
        except ValueError as exc:
            raise PredictionsError(f"{path}: {exc}") from None
        return arrays

    def score_npz(self, path: str) -> Score:
        """Score a predictions file holding :attr:`npz_keys` (see :meth:`read_npz`)."""
        arrays = self.read_npz(path)
        try:
            return self.score(**arrays)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
