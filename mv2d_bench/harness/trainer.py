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

import contextlib
import inspect
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mv2d_bench import objectives
from mv2d_bench.cli import CliError
from mv2d_bench.config import RunConfig, run_key
from mv2d_bench.harness import faults
from mv2d_bench.harness.checkpoints import (
    FORMAT,
    CheckpointError,
    clone_state,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from mv2d_bench.harness.distributed import (
    all_gather,
    all_gather_tensor,
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


class TrainingError(CliError, RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the one-line message says where and which
    term, and which checkpoint was kept."""


NONFINITE_CHECK_STEPS = 50
"""Steps between two looks at the loss terms' finiteness (one host sync; also at every
checkpoint and at the end of every epoch). Between looks the flags stay on the device."""


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
        force: bool = False,
    ) -> None:
        self.task = task
        self.config = config
        self.log_path = log_path
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.force = force
        """Start from scratch even when ``checkpoint_path`` holds a checkpoint of this run."""
        self.log_file: Path | None = None
        self._finite: tuple | None = None  # (term names, first bad step, value) on the device
        self._finite_epoch = 0
        self._saved: tuple[int, int] | None = None
        self.resumed_from: dict[str, Any] | None = None
        """Where a resumed run took up (``epoch``, ``step``, ``finished``), None for a new one."""
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
        t, w = cfg.train, self.world
        self._gen = generator(cfg.run.seed, "batches")
        self._history: list[dict[str, Any]] = []
        self._best: dict[str, Any] = {"epoch": 0, "value": None, "metrics": {}, "state": None}
        self._cost = {"train_seconds": 0.0, "eval_seconds": 0.0, "steps": 0}
        self._saved: tuple[int, int] | None = None  # (epoch, step) of the checkpoint on disk
        resume = self._resume_state()
        start_epoch = start_step = 0
        sums: dict[str, Tensor] = {}
        if resume is not None:
            start_epoch, start_step, sums = self._restore(resume)
        self._log = log = JsonlLog(
            self.log_path if w.is_main else None, rows=resume["log"] if resume else None
        )
        if resume is None:
            log.write(
                "start",
                config=cfg.to_dict(),
                device=str(self.device),
                world_size=w.size,
                backend=w.backend,
            )
        else:
            log.write("resume", **self.resumed_from, checkpoint=str(self.checkpoint_path))
        primary = task.protocol.primary
        per_epoch = [task.num_train_batches(e) for e in range(t.epochs)]
        total = sum(per_epoch) if all(n is not None for n in per_epoch) else None
        desc = f"{cfg.run.benchmark}/{cfg.run.objective}"
        bar = Progress(total, enabled=t.progress and w.is_main, desc=desc)
        if total is not None:
            bar.step(sum(per_epoch[:start_epoch]) + start_step)
        complete = False
        try:
            for epoch in range(start_epoch, t.epochs):
                factor = schedule_factor(epoch, t)
                for group in self.optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                first = epoch == start_epoch
                t0 = time.perf_counter()
                sums, n_steps = self._train_epoch(
                    epoch, bar, start=start_step if first else 0, sums=sums if first else {}
                )
                self._cost["train_seconds"] += time.perf_counter() - t0
                terms = {k: float(v) / max(n_steps, 1) for k, v in sums.items()}
                row: dict[str, Any] = {"epoch": epoch + 1, "lr": t.lr * factor, "loss": terms}
                last = epoch + 1 == t.epochs
                if task.has_validation and ((epoch + 1) % t.eval_every == 0 or last):
                    t0 = time.perf_counter()
                    row["val"] = self._evaluate("val")
                    self._cost["eval_seconds"] += time.perf_counter() - t0
                self._history.append(row)
                if "val" in row:
                    values = [h["val"][primary] if "val" in h else None for h in self._history]
                    if task.protocol.best_epoch(values) == epoch:
                        self._best = {
                            "epoch": epoch + 1,
                            "value": row["val"][primary],
                            "metrics": row["val"],
                            "state": clone_state(model),
                        }
                elif not task.has_validation:
                    self._best = {"epoch": epoch + 1, "value": None, "metrics": {}, "state": None}
                log.write("epoch", **row)
                extra = {f"val_{primary}": row["val"][primary]} if ("val" in row) else None
                bar.show(epoch + 1, terms, extra)
                self._save(epoch + 1, 0, {})
            complete = True
        finally:
            bar.close()
            if not complete:
                log.close(complete=False)
        history, best = self._history, self._best
        last_test: dict[str, float] = {}
        if getattr(task, "report_last_epoch", False):
            t0 = time.perf_counter()
            last_test = self._evaluate("test")
            self._cost["eval_seconds"] += time.perf_counter() - t0
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        t0 = time.perf_counter()
        test = self._evaluate("test")
        test_score = self.scores["test"]
        self._cost["eval_seconds"] += time.perf_counter() - t0
        log.write("test", best_epoch=best["epoch"], val=best["metrics"], test=test, last=last_test)
        try:
            self.log_file = log.close(complete=True)
        except OSError as exc:  # the folder became unwritable: the result must not be lost
            self.log_file = None
            self.log_error = exc
        return TrainResult(
            best_epoch=best["epoch"],
            val_metrics=best["metrics"],
            test_metrics=test,
            test_score=test_score,
            last_test_metrics=last_test,
            history=history,
            train_seconds=self._cost["train_seconds"],
            eval_seconds=self._cost["eval_seconds"],
            steps=int(self._cost["steps"]),
            param_count=sum(p.numel() for p in model.parameters()),
            objective_params=hparams_of(objective),
        )

    def _batches(self, epoch: int, start: int):
        """The epoch's batches from ``start`` on. The batch generator is set to its state at the
        start of the epoch, so the skipped batches are drawn (not loaded, for a task whose
        ``train_batches`` takes ``start``) and every later draw is the uninterrupted run's."""
        fn = self.task.train_batches
        if start and "start" in inspect.signature(fn).parameters:
            return fn(epoch, self._gen, start=start)
        return itertools.islice(fn(epoch, self._gen), start, None)

    def _train_epoch(
        self, epoch: int, bar: Progress, start: int = 0, sums: dict[str, Tensor] | None = None
    ) -> tuple[dict[str, float], int]:
        """Train one epoch from step ``start`` (a resumed epoch; ``sums``: its loss sums so far)."""
        self.model.train()
        self.objective.train()
        self._epoch_gen = self._gen.get_state()
        sums = dict(sums or {})
        self._finite, self._finite_epoch = None, epoch
        every = self.config.train.checkpoint_every
        n = start
        for batch in self._batches(epoch, start):
            terms = self.train_step(batch, epoch=epoch, step=n)
            for name, value in terms.items():
                sums[name] = sums[name] + value if name in sums else value
            n += 1
            self._cost["steps"] += 1
            bar.step()
            faults.reached("kill-after-step")
            if n % NONFINITE_CHECK_STEPS == 0:
                self._check_finite(epoch)
            if every and n % every == 0:
                self._save(epoch, n, sums)
        self._check_finite(epoch)
        if self.world.size > 1 and sums:  # the epoch's mean terms over every rank's items
            names = list(sums)
            mean = all_reduce_mean(torch.stack([sums[k].float() for k in names]))
            sums = dict(zip(names, mean, strict=True))
        return {k: v.item() for k, v in sums.items()}, n

    def train_step(self, batch: Any, epoch: int = 0, step: int = 0) -> dict[str, Tensor]:
        """One optimisation step on ``batch`` (model in train mode); returns the detached terms.

        No host synchronisation: whether each term is finite is recorded on the device
        (:meth:`_track_finite`) and looked at every :data:`NONFINITE_CHECK_STEPS` steps, at
        every checkpoint and at the end of the epoch (:meth:`_check_finite`)."""
        opt = self.optimizer
        amp = bool(self.config.train.amp)
        with self._amp_kernels(amp):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=amp):
                terms = self.step_module(batch)
            if amp:  # the loss terms in float32, whatever autocast computed them in
                terms = {k: v.float() for k, v in terms.items()}
            loss = sum(terms.values())
            self._track_finite(terms, loss, step)
            opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()  # the scaler is a no-op unless AMP runs on CUDA
        if self.config.train.grad_clip > 0:
            self.scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.train.grad_clip)
        self.scaler.step(opt)
        self.scaler.update()
        return {k: v.detach() for k, v in terms.items()}

    def _amp_kernels(self, amp: bool) -> contextlib.AbstractContextManager:
        """Mixed precision on the CPU (bfloat16) runs with oneDNN (mkldnn) off, forward and
        backward: torch 2.14's oneDNN bfloat16 convolution gave different, sometimes NaN outputs
        for the same weights and input on one thread (ResNet-50 trunk, deterministic mode);
        torch's own CPU kernels are repeatable (tests/harness/test_reid_training.py)."""
        if amp and self.device.type == "cpu":
            return torch.backends.mkldnn.flags(enabled=False)
        return contextlib.nullcontext()

    # -- non-finite losses ------------------------------------------------------------------
    def _track_finite(self, terms: dict[str, Tensor], loss: Tensor, step: int) -> None:
        """Keep, on the device, the first step of this epoch at which each term (and their sum)
        was not finite, and its value there."""
        names = (*terms, SUM_TERM)
        values = torch.stack([v.detach().float().reshape(()) for v in (*terms.values(), loss)])
        if self._finite is not None and self._finite[0] != names:
            self._check_finite(self._finite_epoch)  # other terms from now on: look first
            self._finite = None
        if self._finite is None:
            first = torch.full(values.shape, -1, dtype=torch.int64, device=values.device)
            self._finite = (names, first, torch.zeros_like(values))
        names, first, bad_values = self._finite
        newly = (first < 0) & ~torch.isfinite(values)
        first = torch.where(newly, step, first)
        bad_values = torch.where(newly, values, bad_values)
        self._finite = (names, first, bad_values)

    def _check_finite(self, epoch: int) -> None:
        """Raise :class:`TrainingError` when a term was not finite at some step (on any rank):
        the message names the first such step, its terms and the checkpoint that is kept."""
        if self._finite is None:
            return
        names, first, bad_values = self._finite
        if self.world.size > 1:
            firsts = all_gather_tensor(first)
            values = all_gather_tensor(bad_values)
            never = torch.iinfo(torch.int64).max
            masked = torch.where(firsts < 0, never, firsts)
            first, rank = masked.min(dim=0)
            bad_values = values.gather(0, rank[None]).squeeze(0)
            first = torch.where(first == never, -1, first)
        steps = first.tolist()
        bad = [(s, n, v) for s, n, v in zip(steps, names, bad_values.tolist(), strict=True)
               if s >= 0]  # fmt: skip
        if not bad:
            return
        step = min(s for s, _, _ in bad)
        at = [(n, v) for s, n, v in bad if s == step]
        terms = [(n, v) for n, v in at if n != SUM_TERM]
        if terms:
            name, value = terms[0]
            what = f"term '{name}' is {value}"
            if len(terms) > 1:
                what += " (also " + ", ".join(f"'{n}' = {v}" for n, v in terms[1:]) + ")"
        else:
            what = f"the {SUM_TERM} is {at[0][1]} while every term is finite"
        raise TrainingError(
            f"non-finite loss at epoch {epoch + 1}, step {step + 1}: {what}; training stopped, "
            f"{self._kept()} (lower train.lr, set train.grad_clip or check the data for extreme "
            "values)"
        )

    def _check_weights(self, epoch: int, step: int) -> None:
        """Raise :class:`TrainingError` when a parameter or buffer is not finite (a finite loss
        can still blow up BatchNorm statistics): such weights never replace a good checkpoint."""
        named = [
            (f"{prefix}{k}", v)
            for prefix, module in (("", self.model), ("objective.", self.objective))
            for k, v in module.state_dict().items()
            if v.is_floating_point() and v.numel()
        ]
        if not named or bool(torch.stack([torch.isfinite(v).all() for _, v in named]).all()):
            return
        bad = [k for k, v in named if not bool(torch.isfinite(v).all())]
        when = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch + 1}"
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise TrainingError(
            f"non-finite weights at {when}: {shown}; training stopped, "
            f"{self._kept()} (lower train.lr, set train.grad_clip or check the data)"
        )

    def _kept(self) -> str:
        """What the checkpoint on disk holds (for the messages of a stopped run)."""
        if self._saved is not None and self.checkpoint_path is not None:
            e, s = self._saved
            where = "at the end of epoch " + str(e) if s == 0 else f"epoch {e + 1}, step {s}"
            return f"the last good checkpoint ({where}) is kept in {self.checkpoint_path}"
        if self.checkpoint_path is not None:
            return f"no checkpoint was written before it ({self.checkpoint_path})"
        return "no --checkpoint was asked for"

    # -- evaluation -------------------------------------------------------------------------
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
    def checkpoint_state(self, epoch: int, step: int, sums: dict[str, Tensor]) -> dict[str, Any]:
        """Everything a bitwise resume needs (format :data:`checkpoints.FORMAT`): ``epoch``
        epochs done and ``step`` steps of the next one (0 at an epoch's end), the batch
        generator at the start of that epoch, every rank's loss sums of its steps so far, the model,
        objective and optimiser (with the learning-rate position, a function of the epoch),
        every random generator of every rank, history, best epoch (with its weights), the
        JSONL rows so far, cost counters, world size and configuration."""
        gen = self._epoch_gen if step else self._gen.get_state()
        return {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "run_key": run_key(self.config.to_dict()),
            "world_size": self.world.size,
            "epoch": epoch,
            "step": step,
            "finished": epoch == self.config.train.epochs and step == 0,
            "generator": gen,
            "sums": all_gather({k: v.detach().cpu() for k, v in sums.items()}),
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **({"grad_scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
            "rng": all_gather(rng_state()),
            "history": self._history,
            "best": self._best,
            "log": self._log.rows if hasattr(self, "_log") else [],
            "cost": dict(self._cost),
        }

    def _save(self, epoch: int, step: int, sums: dict[str, Tensor]) -> None:
        """Checkpoint (every rank takes part; rank 0 writes), after checking the loss terms:
        a checkpoint never holds weights stepped with a non-finite loss."""
        if self.checkpoint_path is None:
            return
        self._check_finite(epoch if step else epoch - 1)
        self._check_weights(epoch if step else epoch - 1, step)
        state = self.checkpoint_state(epoch, step, sums)
        if self.world.is_main:
            save_checkpoint(self.checkpoint_path, state)
        self._saved = (epoch, step)

    def _resume_state(self) -> dict[str, Any] | None:
        """The checkpoint to resume from (checked against this run), or None to start anew."""
        path = self.checkpoint_path
        if path is None:
            return None
        if self.world.is_main:  # temporary files of writes that a kill interrupted
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        if self.force or not path.is_file():
            return None
        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            raise CheckpointError(
                f"{path}: field 'format': expected {FORMAT}, found {state.get('format')!r} (a "
                "checkpoint of another mv2d-bench version); rerun with --force to start over"
            )
        ours = self.config.to_dict()
        if state.get("run_key") != run_key(ours):
            diff = config_diff(state.get("config") or {}, ours)
            raise CheckpointError(
                f"{path}: field 'config' differs from this run's configuration ({diff}); it is "
                "another run's checkpoint: use the configuration it was made with, another "
                "--checkpoint, or --force to start over"
            )
        if state.get("world_size") != self.world.size:
            raise CheckpointError(
                f"{path}: field 'world_size': written by {state.get('world_size')} process(es), "
                f"this run has {self.world.size}; resume with the same number of processes "
                "(torchrun --nproc-per-node) or --force to start over"
            )
        return state

    def _restore(self, state: dict[str, Any]) -> tuple[int, int, dict[str, Tensor]]:
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler.is_enabled() and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])
        self._gen.set_state(state["generator"])
        set_rng_state(state["rng"][self.world.rank])
        self._history = list(state["history"])
        self._best = state["best"]
        self._cost = dict(state["cost"])
        epoch, step = int(state["epoch"]), int(state["step"])
        self._saved = (epoch, step)
        changed = config_diff(state["config"], self.config.to_dict())
        self.resumed_from = {
            "epoch": epoch,
            "step": step,
            "finished": bool(state["finished"]),
            **({"changed": changed} if changed != "no key" else {}),
        }
        sums = {k: v.to(self.device) for k, v in state["sums"][self.world.rank].items()}
        return epoch, step, sums


SUM_TERM = "sum of the terms"


def config_diff(a: dict[str, Any], b: dict[str, Any], limit: int = 3) -> str:
    """The keys whose values differ between two config dicts, as 'table.key: A -> B'."""
    out = []
    for table in sorted(set(a) | set(b)):
        ta, tb = a.get(table) or {}, b.get(table) or {}
        if not isinstance(ta, dict) or not isinstance(tb, dict):
            if ta != tb:
                out.append(f"[{table}]")
            continue
        for key in sorted(set(ta) | set(tb)):
            if ta.get(key, "<absent>") != tb.get(key, "<absent>"):
                out.append(f"{table}.{key}: {ta.get(key, '<absent>')!r} -> "
                           f"{tb.get(key, '<absent>')!r}")  # fmt: skip
    if not out:
        return "no key"
    more = f" and {len(out) - limit} more" if len(out) > limit else ""
    return "; ".join(out[:limit]) + more
