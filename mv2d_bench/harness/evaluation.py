"""The one evaluation loop (the trainer's, ``mv2d-bench evaluate``'s): a task's split scored by
its protocol's streaming metric, synced across processes (see :mod:`mv2d_bench.harness.task`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from mv2d_bench.harness.task import Task
from mv2d_bench.leaderboards.protocols import Score


def evaluate(task: Task, model: nn.Module, split: str) -> Score:
    """``task.protocol``'s score of ``model`` on ``split``: reset -> update per batch of this
    rank (``task.eval_batches``) -> compute (synced), in eval mode under no_grad, on the task's
    device. The model's train/eval mode is restored afterwards."""
    return score_batches(task, model, task.eval_batches(split))


def score_batches(task: Task, model: nn.Module, batches: Iterable[Any]) -> Score:
    """:func:`evaluate` over ``batches`` (an iterable of this rank's batches; a generator is
    drawn after the switch to eval mode)."""
    metric = task.protocol.metric().to(task.device)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                metric.update(**task.predict_step(model, batch))
            with warnings.catch_warnings():
                # a rank whose share of a small split is empty has updated nothing: not an error
                warnings.filterwarnings("ignore", "The ``compute`` method of metric")
                return metric.compute()
    finally:
        model.train(training)


def collect_predictions(task: Task, model: nn.Module, split: str) -> dict[str, np.ndarray]:
    """The arrays ``mv2d-bench score`` reads (the protocol's npz keys), for the whole split in
    dataset order: what :func:`evaluate` feeds the metric, as NumPy arrays. One process only."""
    if task.world.size > 1:
        raise ValueError(
            f"predictions of {split!r} are collected in one process; this one is rank "
            f"{task.world.rank} of {task.world.size}"
        )
    parts: dict[str, list[np.ndarray]] = {}
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in task.eval_batches(split):
                for key, value in task.predict_step(model, batch).items():
                    value = value.cpu().numpy() if isinstance(value, torch.Tensor) else value
                    parts.setdefault(key, []).append(np.asarray(value))
    finally:
        model.train(training)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    for group, index_key in task.protocol.dataset_index_keys.items():
        if index_key not in arrays:
            continue
        order = np.argsort(arrays.pop(index_key), kind="stable")
        for key in [k for k in arrays if k.startswith(f"{group}_")]:
            arrays[key] = arrays[key][order]
    return arrays
