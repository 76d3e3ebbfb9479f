"""The one evaluation loop (the trainer's, ``mv2d-bench evaluate``'s): a task's split scored by
its protocol's streaming metric, synced across processes (see :mod:`mv2d_bench.harness.task`);
and the scoring of a saved checkpoint (:func:`evaluate_checkpoint`)."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
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


@dataclass
class CheckpointScore:
    """What :func:`evaluate_checkpoint` returns."""

    score: Score
    protocol: str
    split: str
    weights: str
    """``"best"`` (the epoch the run reports) or ``"last"`` (the latest epoch's weights)."""
    epoch: int
    """1-based epoch of the weights that were scored."""
    world_size: int
    backend: str | None


def evaluate_checkpoint(
    path: str | Path,
    split: str = "test",
    weights: str = "best",
    root: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    predictions_out: str | Path | None = None,
) -> CheckpointScore:
    """Score the weights saved in a ``--checkpoint`` file under the run's protocol.

    The run's configuration comes from the checkpoint (``root``, ``device`` and ``threads``
    may be changed: they do not change what a run computes). ``weights="best"``: the epoch whose
    test score the run reports (the best validation epoch; the last epoch for tasks without
    validation); ``"last"``: the latest saved epoch. Under torchrun every process scores its
    share of the evaluation batches and the metric syncs, so N processes give the numbers of
    one. ``predictions_out`` (one process only) also saves the arrays ``mv2d-bench score``
    reads."""
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.checkpoints import FORMAT, CheckpointError, load_checkpoint
    from mv2d_bench.harness.distributed import init_from_env, main_first, shutdown, world
    from mv2d_bench.harness.runner import make_task
    from mv2d_bench.harness.seeding import seed_everything

    if weights not in ("best", "last"):
        raise ValueError(f"weights: expected 'best' or 'last', got {weights!r}")
    state = load_checkpoint(path)
    if state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: field 'format': expected {FORMAT}, found {state.get('format')!r} (not a "
            "checkpoint of this mv2d-bench version)"
        )
    cli = {"run": {"root": root, "device": device, "threads": threads}}
    config = load_config(raw=state["config"], cli=cli)
    best = state.get("best") or {}
    if weights == "best" and best.get("state") is not None:
        model_state, epoch = best["state"], int(best["epoch"])
    else:
        model_state, epoch, weights = state["model"], int(state["epoch"]), "last"
    started = init_from_env(config.run.device)
    ok = False
    try:
        if config.run.threads > 0:
            torch.set_num_threads(config.run.threads)
        task = make_task(config)
        seed_everything(config.run.seed, config.train.deterministic)
        with main_first():
            task.setup()
        seed_everything(config.run.seed, config.train.deterministic)
        model = task.build_model().to(task.device)
        model.load_state_dict(model_state)
        score = evaluate(task, model, split)
        if predictions_out is not None:
            arrays = collect_predictions(task, model, split)
            save_npz(predictions_out, arrays)
        w = world()
        ok = True
        return CheckpointScore(score, task.protocol.id, split, weights, epoch, w.size, w.backend)
    finally:
        if started:
            shutdown(synchronize=ok)


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """``numpy.savez`` into ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
