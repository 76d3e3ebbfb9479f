"""One run end to end: config -> benchmark -> task -> trainer -> run record on disk.

Used by ``mv2d-bench run`` (also under torchrun) and ``mv2d-bench suite``. The JSONL log goes to
``<out>/logs/<benchmark>-<objective>-s<seed>-<key>.jsonl`` and is listed in the record's
``artifacts`` (a path relative to the record).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mv2d_bench import loaders
from mv2d_bench.config import RunConfig, run_key
from mv2d_bench.harness.distributed import init_from_env, shutdown, world
from mv2d_bench.harness.tasks import task_class
from mv2d_bench.harness.trainer import Trainer, TrainResult, resolve_device
from mv2d_bench.leaderboards.records import environment, write_record
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


def run(
    config: RunConfig, out_dir: str | Path, checkpoint: str | Path | None = None
) -> Path | None:
    """Train and evaluate one configuration; write its run record into ``out_dir``.

    Under torchrun every process calls this: they join the process group (gloo on the CPU,
    NCCL on CUDA), train one DistributedDataParallel model on their shares of each global
    batch, and only rank 0 writes the log, checkpoints and the record (its path is returned;
    the other ranks return None)."""
    out_dir = Path(out_dir)
    started = init_from_env(config.run.device)
    try:
        task = make_task(config)
        log_rel = f"logs/{log_name(config)}"
        trainer = Trainer(task, config, log_path=out_dir / log_rel, checkpoint_path=checkpoint)
        result = trainer.fit()
        if not world().is_main:
            return None
        return write_record(out_dir, build_record(config, task, result, log_rel))
    finally:
        if started:
            shutdown()
