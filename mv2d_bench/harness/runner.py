"""One run end to end: config -> benchmark -> task -> trainer -> run record on disk.

Used by ``mv2d-bench run`` (also under torchrun) and ``mv2d-bench suite``. The JSONL log goes to
``<out>/logs/<benchmark>-<objective>-s<seed>-<key>.jsonl`` and is listed in the record's
``artifacts`` (a path relative to the record).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from mv2d_bench import loaders
from mv2d_bench.cli import CliError
from mv2d_bench.config import RunConfig, run_key
from mv2d_bench.harness.distributed import broadcast, init_from_env, shutdown, world
from mv2d_bench.harness.tasks import task_class
from mv2d_bench.harness.trainer import Trainer, TrainResult, resolve_device
from mv2d_bench.leaderboards.records import (
    RECORD_NAME_RE,
    RecordError,
    environment,
    read_record,
    write_record,
)
from mv2d_bench.registry import registry


def open_benchmark(config: RunConfig):
    """The configured benchmark on its data root (raises DataNotFoundError when absent)."""
    return loaders.create(config.run.benchmark, root=config.run.root or None, **config.benchmark)


def make_task(config: RunConfig, benchmark=None):
    benchmark = benchmark if benchmark is not None else open_benchmark(config)
    device = resolve_device(config.run.device)
    return task_class(benchmark.family)(benchmark, config, device)


def log_name(config: RunConfig) -> str:
    stem = f"{config.run.benchmark}-{config.run.objective}-s{config.run.seed}"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)
    return f"{stem}-{run_key(config.to_dict())[:12]}.jsonl"


def build_record(config: RunConfig, task, result: TrainResult, log_rel: str | None) -> dict:
    fields = task.record_fields()
    entry = registry("objectives").entry(config.run.objective)
    cls = entry.load()
    test = dict(result.test_metrics)
    test.update({f"last_epoch_{k}": v for k, v in result.last_test_metrics.items()})
    metrics: dict[str, Any] = dict(test)
    metrics.update({f"val_{k}": v for k, v in result.val_metrics.items()})
    metrics["best_epoch"] = result.best_epoch
    trial = fields["benchmark"].get("trial") if task.protocol.trial_scope == "split" else None
    per_trial = result.test_score.record_fields(trial)["per_trial"]
    if result.last_test_metrics and len(per_trial) == 1:  # the last epoch beside the best
        per_trial[0]["metrics"].update(
            {f"last_epoch_{k}": v for k, v in result.last_test_metrics.items()}
        )
    record = {
        "benchmark": fields["benchmark"],
        "protocol": fields["protocol"],
        "objective": {
            "name": config.run.objective,
            "version": getattr(cls, "version", 1),
            "params": result.objective_params,
            "distribution": entry.distribution,
            "distribution_version": entry.version,
        },
        "model": {**fields["model"], "param_count": result.param_count},
        "config": config.to_dict(),
        "seed": config.run.seed,
        "metrics": metrics,
        "per_trial": per_trial,
        "cost": {
            "train_seconds": round(result.train_seconds, 3),
            "eval_seconds": round(result.eval_seconds, 3),
            "steps_per_second": round(result.steps_per_second, 3),
        },
        "environment": {
            **environment(str(task.device)),
            "world_size": world().size,
            "backend": world().backend,
        },
    }
    if fields.get("protocol_gallery") is not None:  # SYSU-MM01: where the galleries came from
        record["protocol_gallery"] = fields["protocol_gallery"]
    artifacts = dict(fields.get("artifacts") or {})
    if log_rel:
        artifacts["log"] = log_rel
    if artifacts:
        record["artifacts"] = artifacts
    return record


class RunError(CliError):
    """A run that cannot start or whose record could not go where asked (one line)."""


def find_record(out_dir: str | Path, config: RunConfig) -> Path | None:
    """A readable run record of this configuration (same run key) in ``out_dir`` or its
    ``logs/`` folder (where a record goes when ``out_dir`` cannot take it), else None."""
    key = run_key(config.to_dict())
    out_dir = Path(out_dir)
    for folder in (out_dir, out_dir / "logs"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            if not RECORD_NAME_RE.match(path.name):
                continue
            try:
                rec = read_record(path)
            except (RecordError, OSError):
                continue  # unreadable: not a finished run (the suite reports it by name)
            if isinstance(rec.get("config"), dict) and run_key(rec["config"]) == key:
                return path
    return None


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and ``out_dir/logs`` and write (then remove) a file in each, so that
    a run never trains for hours into a folder that cannot take its record."""
    try:
        for folder in (out_dir, out_dir / "logs"):
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".mv2d-bench-write-check.", dir=folder)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(tmp)
    except OSError as exc:
        raise RunError(
            f"{out_dir}: --out: expected a folder that can be written, got: "
            f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"
        ) from None


def write_record_safely(out_dir: Path, record: dict, log_file: Path | None) -> Path:
    """:func:`write_record` into ``out_dir``; when that fails (the folder became unwritable, the
    disk is full), into the log's folder, then the system's temporary folder, and raise a
    :class:`RunError` naming both paths: a finished run's result is never lost."""
    try:
        return write_record(out_dir, record)
    except FileExistsError:
        raise
    except OSError as exc:
        error = exc
    folders = [log_file.parent] if log_file is not None else []
    folders.append(Path(tempfile.gettempdir()) / "mv2d-bench-records")
    for folder in folders:
        moved = dict(record)
        if record.get("artifacts"):
            moved["artifacts"] = {
                k: os.path.relpath((out_dir / v).resolve(), folder.resolve())
                for k, v in record["artifacts"].items()
            }
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = write_record(folder, moved)
        except OSError:
            continue
        raise RunError(
            f"{out_dir}: could not write the run record there ({error.strerror or error}); it "
            f"was written to {path} instead (log: {log_file})"
        )
    print(json.dumps(record, sort_keys=True, default=str))  # the very last resort: stdout
    raise RunError(
        f"{out_dir}: could not write the run record anywhere ({error.strerror or error}); it "
        "was printed to standard output"
    )


def run(
    config: RunConfig,
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    force: bool = False,
) -> Path | None:
    """Train and evaluate one configuration; write its run record into ``out_dir``.

    ``out_dir`` is checked for writability first. With ``checkpoint`` the run resumes from it
    when it holds this run (bitwise as the uninterrupted run), also a finished one whose record
    is missing (then nothing is trained); ``force`` starts from scratch instead.

    Under torchrun every process calls this: they join the process group (gloo on the CPU,
    NCCL on CUDA), train one DistributedDataParallel model on their shares of each global
    batch, and only rank 0 writes the log, checkpoints and the record (its path is returned;
    the other ranks return None)."""
    out_dir = Path(out_dir)
    started = init_from_env(config.run.device)
    ok = False
    try:
        path = _run_in_world(config, out_dir, checkpoint, force)
        ok = True
        return path
    finally:
        if started:
            shutdown(synchronize=ok)


def _run_in_world(
    config: RunConfig, out_dir: Path, checkpoint: str | Path | None, force: bool
) -> Path | None:
    """The body of :func:`run`, inside the process group (if any)."""
    problem = None
    if world().is_main:
        try:
            check_writable(out_dir)
        except RunError as exc:
            problem = str(exc)
    problem = broadcast(problem)
    if problem:
        raise RunError(problem)
    task = make_task(config)
    log_rel = f"logs/{log_name(config)}"
    trainer = Trainer(
        task, config, log_path=out_dir / log_rel, checkpoint_path=checkpoint, force=force
    )
    result = trainer.fit()
    if not world().is_main:
        return None
    log_file = trainer.log_file or (out_dir / f"{log_rel}.part")
    log_rel = os.path.relpath(log_file, out_dir)
    record = build_record(config, task, result, log_rel)
    path = write_record_safely(out_dir, record, log_file)
    if trainer.resumed_from and trainer.resumed_from["finished"]:
        print(
            f"mv2d-bench: note: {checkpoint} holds this run finished but its record was not "
            f"in {out_dir}: wrote it from the saved weights, nothing was trained",
            file=sys.stderr,
        )
    return path
