"""The one task-agnostic trainer (see :mod:`mv2d_bench.harness.task` for the contract).

``Trainer(task, config).fit()`` seeds, builds the model and the objective, trains with the
configured optimiser and schedule (:mod:`mv2d_bench.harness.optim`: Adam or SGD; step or
cosine, optional linear warm-up), logs
every epoch's mean loss terms to the JSONL log and the progress bar, validates (the task's
protocol metric over its evaluation batches, :mod:`mv2d_bench.harness.evaluation`), keeps the
weights of the best epoch (``Protocol.best_epoch``: the primary metric's direction, ties to the
earliest epoch) and finally evaluates them on the test split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mv2d_bench import objectives
from mv2d_bench.config import RunConfig
from mv2d_bench.harness.checkpoints import clone_state, load_checkpoint, save_checkpoint
from mv2d_bench.harness.distributed import (
    all_reduce_mean,
    broadcast_buffers,
    main_first,
    run_device,
    world,
)
from mv2d_bench.harness.evaluation import evaluate
from mv2d_bench.harness.optim import lr_factor, make_optimizer, schedule_factor
from mv2d_bench.harness.progress import Progress
from mv2d_bench.harness.runlog import JsonlLog
from mv2d_bench.harness.seeding import derive_seed, generator, seed_everything
from mv2d_bench.harness.task import Task
from mv2d_bench.leaderboards.protocols import Score
from mv2d_bench.objectives.contract import call_objective, hparams_of, needs_of

__all__ = ["Trainer", "TrainResult", "TrainingError", "lr_factor", "resolve_device"]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message says where and which term."""


@dataclass
class TrainResult:
    best_epoch: int
    """1-based epoch whose weights were evaluated on the test split."""
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    test_score: Score | None = None
    """The protocol's test score (metrics and per-trial values) of the best epoch."""
    last_test_metrics: dict[str, float] = field(default_factory=dict)
    """Test metrics of the last epoch's weights (tasks with ``report_last_epoch``), beside the
    best-validation epoch's ``test_metrics``."""
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    steps: int = 0
    param_count: int = 0
    objective_params: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_device(name: str) -> torch.device:
    """``run.device`` as a device; under torchrun a CUDA device is this process's
    ``cuda:LOCAL_RANK``."""
    if name == "auto":
        return run_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run.device is {name!r} but torch sees no CUDA device")
    return run_device(dev)


def objective_needs(objective: nn.Module, n_views: int | None) -> frozenset[str]:
    return needs_of(objective, n_views)


class TrainStep(nn.Module):
    """The model and the objective as one module whose ``forward(batch)`` returns the named loss
    terms (``task.forward``, ``task.losses``, the objective's terms as ``obj/<name>``).

    This is what ``DistributedDataParallel`` wraps under torchrun: every parameter (the
    objective's too, e.g. CIB's estimator) is used inside its forward, so DDP syncs all their
    gradients, and the task keeps calling methods and attributes of the real model."""

    def __init__(self, task: Task, model: nn.Module, objective: nn.Module, needs) -> None:
        super().__init__()
        self.model = model
        self.objective = objective
        self.task = task
        self.needs = needs

    def forward(self, batch: Any) -> dict[str, Tensor]:
        outputs = self.task.forward(self.model, batch, self.needs)
        terms = dict(self.task.losses(self.model, outputs, batch))
        for name, value in call_objective(self.objective, outputs).items():
            terms[f"obj/{name}"] = value
        return terms


class Trainer:
    def __init__(
        self,
        task: Task,
        config: RunConfig,
        log_path: str | Path | None = None,
        checkpoint_path: str | Path | None = None,
    ) -> None:
        self.task = task
        self.config = config
        self.log_path = log_path
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.device = task.device
        self.model: nn.Module | None = None
        self.objective: nn.Module | None = None
        self.scores: dict[str, Score] = {}
        """The last score of each split."""

    # -- building ---------------------------------------------------------------------------
    def build(self) -> None:
        cfg = self.config
        if cfg.run.threads > 0:
            torch.set_num_threads(cfg.run.threads)
        seed_everything(cfg.run.seed, cfg.train.deterministic)
        with main_first():  # a data cache is built by rank 0 only
            self.task.setup()
        seed_everything(cfg.run.seed, cfg.train.deterministic)
        self.model = self.task.build_model().to(self.device)
        self.objective = objectives.create(cfg.run.objective, **cfg.objective).to(self.device)
        self.n_views = getattr(self.task, "n_views", None)
        self.needs = objective_needs(self.objective, self.n_views)
        self._materialise_objective()
        params = list(self.task.param_groups(self.model))
        obj_params = [p for p in self.objective.parameters() if p.requires_grad]
        if obj_params:
            if params and isinstance(params[0], dict):
                params.append({"params": obj_params})
            else:
                params += obj_params
        t = cfg.train
        self.optimizer = make_optimizer(params, t)
        for group in self.optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self.world = world()
        self.step_module: nn.Module = TrainStep(self.task, self.model, self.objective, self.needs)
        if self.world.size > 1:
            # one replica per process; gradients averaged over the ranks (each rank's loss is
            # the mean over its share of the global batch). Unused parameters (a head whose
            # loss weight is 0) are allowed.
            self.step_module = DistributedDataParallel(
                self.step_module, find_unused_parameters=True
            )
            # different dropout / bottleneck samples on each rank (the same on every rerun)
            torch.manual_seed(derive_seed(cfg.run.seed, "rank", str(self.world.rank)))
        # train.amp: float16 + a gradient scaler on CUDA, bfloat16 (no scaler needed) elsewhere
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=bool(t.amp) and self.device.type == "cuda"
        )

    def _materialise_objective(self) -> None:
        """Run one forward pass when the objective sizes its parameters from the data (CIB)."""
        obj = self.objective
        lazy = any(isinstance(p, nn.parameter.UninitializedParameter) for p in obj.parameters())
        unbound = hasattr(obj, "bind") and getattr(obj, "obs_dims", 0) is None
        if not (lazy or unbound):
            return
        batch = next(iter(self.task.train_batches(0, generator(self.config.run.seed, "warmup"))))
        self.model.eval()
        with torch.no_grad():
            obj(self.task.forward(self.model, batch, self.needs))

    # -- training ---------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        if self.model is None:
            self.build()
        cfg, task, model, objective = self.config, self.task, self.model, self.objective
        t = cfg.train
        main = self.world.is_main
        log = JsonlLog(self.log_path if main else None)
        log.write(
            "start",
            config=cfg.to_dict(),
            device=str(self.device),
            world_size=self.world.size,
            backend=self.world.backend,
        )
        batch_gen = generator(cfg.run.seed, "batches")
        start_epoch, history = 0, []
        best = {"epoch": 0, "value": None, "metrics": {}, "state": None}
        if self.checkpoint_path is not None and self.checkpoint_path.is_file():
            start_epoch, history, best = self._resume(batch_gen)
            log.write("resume", epoch=start_epoch)
        primary = task.protocol.primary
        per_epoch = [task.num_train_batches(e) for e in range(t.epochs)]
        total = sum(per_epoch) if all(n is not None for n in per_epoch) else None
        desc = f"{cfg.run.benchmark}/{cfg.run.objective}"
        bar = Progress(total, enabled=t.progress and main, desc=desc)
        if total is not None:
            bar.step(sum(per_epoch[:start_epoch]))
        train_s = eval_s = 0.0
        steps = 0
        complete = False
        try:
            for epoch in range(start_epoch, t.epochs):
                factor = schedule_factor(epoch, t)
                for group in self.optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                t0 = time.perf_counter()
                sums, n_steps = self._train_epoch(epoch, batch_gen, bar)
                train_s += time.perf_counter() - t0
                steps += n_steps
                terms = {k: float(v) / max(n_steps, 1) for k, v in sums.items()}
                row: dict[str, Any] = {"epoch": epoch + 1, "lr": t.lr * factor, "loss": terms}
                last = epoch + 1 == t.epochs
                if task.has_validation and ((epoch + 1) % t.eval_every == 0 or last):
                    t0 = time.perf_counter()
                    row["val"] = self._evaluate("val")
                    eval_s += time.perf_counter() - t0
                history.append(row)
                if "val" in row:
                    values = [h["val"][primary] if "val" in h else None for h in history]
                    if task.protocol.best_epoch(values) == epoch:
                        best = {
                            "epoch": epoch + 1,
                            "value": row["val"][primary],
                            "metrics": row["val"],
                            "state": clone_state(model),
                        }
                elif not task.has_validation:
                    best = {"epoch": epoch + 1, "value": None, "metrics": {}, "state": None}
                log.write("epoch", **row)
                extra = {f"val_{primary}": row["val"][primary]} if ("val" in row) else None
                bar.show(epoch + 1, terms, extra)
                if self.checkpoint_path is not None and main:
                    self._save(epoch + 1, history, best, batch_gen)
            complete = True
        finally:
            bar.close()
            if not complete:
                log.close(complete=False)
        last_test: dict[str, float] = {}
        if getattr(task, "report_last_epoch", False):
            t0 = time.perf_counter()
            last_test = self._evaluate("test")
            eval_s += time.perf_counter() - t0
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        t0 = time.perf_counter()
        test = self._evaluate("test")
        test_score = self.scores["test"]
        eval_s += time.perf_counter() - t0
        log.write("test", best_epoch=best["epoch"], val=best["metrics"], test=test, last=last_test)
        self.log_file = log.close(complete=True)
        return TrainResult(
            best_epoch=best["epoch"],
            val_metrics=best["metrics"],
            test_metrics=test,
            test_score=test_score,
            last_test_metrics=last_test,
            history=history,
            train_seconds=train_s,
            eval_seconds=eval_s,
            steps=steps,
            param_count=sum(p.numel() for p in model.parameters()),
            objective_params=hparams_of(objective),
        )

    def _train_epoch(
        self, epoch: int, gen: torch.Generator, bar: Progress
    ) -> tuple[dict[str, float], int]:
        self.model.train()
        self.objective.train()
        sums: dict[str, Tensor] = {}
        n = 0
        for batch in self.task.train_batches(epoch, gen):
            terms = self.train_step(batch, epoch=epoch, step=n)
            for name, value in terms.items():
                sums[name] = sums[name] + value if name in sums else value
            n += 1
            bar.step()
        if self.world.size > 1 and sums:  # the epoch's mean terms over every rank's items
            names = list(sums)
            mean = all_reduce_mean(torch.stack([sums[k].float() for k in names]))
            sums = dict(zip(names, mean, strict=True))
        return {k: v.item() for k, v in sums.items()}, n

    def train_step(self, batch: Any, epoch: int = 0, step: int = 0) -> dict[str, Tensor]:
        """One optimisation step on ``batch`` (model in train mode); returns the detached terms."""
        opt = self.optimizer
        amp = bool(self.config.train.amp)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=amp):
            terms = self.step_module(batch)
        if amp:  # the loss terms in float32, whatever autocast computed them in
            terms = {k: v.float() for k, v in terms.items()}
        loss = sum(terms.values())
        if not torch.isfinite(loss):
            bad = {k: float(v.detach()) for k, v in terms.items()}
            raise TrainingError(
                f"non-finite loss at epoch {epoch + 1}, step {step + 1}: terms {bad} "
                "(lower train.lr or check the data for extreme values)"
            )
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # the scaler is a no-op unless AMP runs on CUDA
        if self.config.train.grad_clip > 0:
            self.scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.train.grad_clip)
        self.scaler.step(opt)
        self.scaler.update()
        return {k: v.detach() for k, v in terms.items()}

    def evaluate(self, split: str) -> Score:
        """The protocol's score of the model as it is now on ``split`` (synced across ranks:
        every rank first takes rank 0's buffers, so all ranks evaluate the same weights)."""
        self.objective.eval()
        broadcast_buffers(self.model)
        score = evaluate(self.task, self.model, split)
        self.scores[split] = score
        return score

    def _evaluate(self, split: str) -> dict[str, float]:
        return {k: float(v) for k, v in self.evaluate(split).metrics.items()}

    # -- checkpoints ------------------------------------------------------------------------
    def _save(self, epoch: int, history, best, gen: torch.Generator) -> None:
        save_checkpoint(
            self.checkpoint_path,
            {
                "epoch": epoch,
                "model": self.model.state_dict(),
                "objective": self.objective.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                **({"grad_scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
                "batch_generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "best": best,
                "config": self.config.to_dict(),
            },
        )

    def _resume(self, gen: torch.Generator):
        state = load_checkpoint(self.checkpoint_path)
        if state.get("config") != self.config.to_dict():
            raise ValueError(
                f"{self.checkpoint_path}: field 'config' differs from this run's configuration; "
                "remove the checkpoint or run with the configuration it was made with"
            )
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler.is_enabled() and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])
        gen.set_state(state["batch_generator"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["epoch"]), list(state["history"]), state["best"]
