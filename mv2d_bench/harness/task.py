"""The Task interface: what an application (MVC, ReID, segmentation) gives the one trainer.

The trainer (:mod:`mv2d_bench.harness.trainer`) is task-agnostic. It owns seeding, the objective,
the optimiser and learning-rate schedule, the epoch loop, the progress bar, the JSONL log, model
selection on the validation split and checkpoints. Everything that depends on the data or the
network lives in a :class:`Task`. The contract, in the order the trainer calls it:

1. ``task = TaskClass(benchmark, config, device)`` - cheap; keep references only.
   ``config`` is the resolved :class:`mv2d_bench.config.RunConfig`; the task's own sections
   (declared in :attr:`Task.sections`, e.g. ``config.section("model")``) are flat dataclasses.
2. ``task.setup()`` - load the data, make the split, build in-memory tensors on ``device``.
   Raise :class:`mv2d_bench.loaders.DataError` (a ``ValueError``) naming the file/field on bad data.
3. ``model = task.build_model()`` - an ``nn.Module``. The trainer has seeded torch just before,
   so parameter initialisation is reproducible. The trainer moves it to ``device``.
4. The trainer creates the objective (``mv2d_bench.objectives.create``). Objectives with lazily
   shaped parameters are materialised by one forward pass on the first training batch.
5. Per epoch: ``for batch in task.train_batches(epoch, generator)``:

   - ``outputs = task.forward(model, batch, needs)`` returns a ``ViewOutputs``.
     ``needs`` is the objective's ``needs`` (a frozenset of field names). Fill at least those
     fields plus what :meth:`losses` uses; compute expensive ones (``loo_logits``) ONLY when they
     are in ``needs``. ``outputs.target``/``mask`` must be set.
   - ``terms = task.losses(model, outputs, batch)``: the task's own loss terms (cross-entropy,
     rank/triplet, ...), a dict of named, already weighted scalar tensors. The trainer adds the
     objective's terms (prefixing their names with ``obj/``), sums everything, backpropagates and
     steps. Every term is logged and shown on the progress bar.

   ``train_batches`` must be a pure function of ``(epoch, generator)`` (draw all randomness from
   ``generator``, a seeded ``torch.Generator`` on the CPU), so a CPU run is repeatable.
   ``task.num_train_batches(epoch)`` gives the progress-bar length (``None`` if unknown).
6. Evaluation belongs to the trainer (:func:`mv2d_bench.harness.evaluation.evaluate`). The task
   gives :attr:`Task.protocol` (a Protocol instance, built in ``setup`` with any data-dependent
   arguments such as SYSU-MM01's ``rand_perm_cam``), :meth:`Task.eval_batches` and
   :meth:`Task.predict_step`; the trainer runs, in ``eval()`` mode under ``torch.no_grad()``::

       metric = task.protocol.metric().to(device)
       for batch in task.eval_batches(split):
           metric.update(**task.predict_step(model, batch))
       score = metric.compute()          # synced across processes

   ``eval_batches(split)`` yields THIS rank's share of the split: whole batches with the same
   boundaries as in one process, batch ``b`` on rank ``b % world_size``
   (:meth:`Task.eval_shard`), no padding, so every item's outputs are bitwise those of one
   process. ``predict_step`` returns the keyword arguments of ``metric.update`` (the protocol's
   npz keys; a cat-state protocol also takes each item's dataset index, e.g.
   ``gallery_dataset_index``), as tensors on the task's device.
   After each epoch (every ``train.eval_every`` epochs and at the last), if
   ``task.has_validation``, the trainer scores ``"val"``; ``Protocol.best_epoch`` over the
   primary metric's values picks the best epoch (ties: the earliest), whose weights it keeps.
   Without validation, the last epoch is used.
7. At the end the trainer restores the best weights and scores ``"test"``: the run's reported
   metrics (the protocol's ``Score``: metrics and per-trial values).
8. ``task.record_fields()`` returns the run-record sections only the task knows:
   ``benchmark`` (name, version, data_sha256, split_id, split_sha256, trial), ``protocol`` (id),
   ``model`` (name, params; the trainer adds ``param_count``), and optionally ``artifacts``.
   The trainer/CLI add objective, config, seed, metrics, per-trial values,
   cost and environment.

Distributed runs (torchrun): :attr:`Task.world` says this process's rank and the world size.
``train_batches`` yields this rank's share of every global batch (``train.batch_size`` is the
global batch), drawing the same random numbers on every rank so that all ranks agree on the
global batches.

Optional hooks have defaults here: :meth:`param_groups` (e.g. a smaller learning rate for a
pretrained backbone) and :meth:`num_train_batches`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from mv2d_bench.harness.distributed import World, world
from mv2d_bench.views import ViewOutputs

if TYPE_CHECKING:  # pragma: no cover
    from mv2d_bench.config import RunConfig
    from mv2d_bench.leaderboards.protocols import Protocol
    from mv2d_bench.loaders.base import Benchmark

SPLITS = ("val", "test")


class Task:
    """Base class of the tasks the trainer runs (see the module docstring for the contract)."""

    family: ClassVar[str] = ""
    """The benchmark family this task serves ("mvc", "reid", "seg")."""
    sections: ClassVar[dict[str, type]] = {}
    """Task-specific config sections: TOML table name -> flat dataclass (e.g. "model", "loss")."""
    has_validation: ClassVar[bool] = True
    protocol: Protocol
    """The protocol that scores this task's runs (set by ``setup``)."""

    def __init__(self, benchmark: Benchmark, config: RunConfig, device: torch.device) -> None:
        self.benchmark = benchmark
        self.config = config
        self.device = torch.device(device)

    # -- data -----------------------------------------------------------------------------
    def setup(self) -> None:
        """Load data, make the split, put tensors on the device."""
        raise NotImplementedError

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterable[Any]:
        """The training batches of ``epoch`` (0-based), all randomness from ``generator``."""
        raise NotImplementedError

    def num_train_batches(self, epoch: int) -> int | None:
        return None

    # -- model ----------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def param_groups(self, model: nn.Module) -> Iterable[Any]:
        """What the optimiser trains of the model (the objective's parameters are added)."""
        return [p for p in model.parameters() if p.requires_grad]

    def forward(self, model: nn.Module, batch: Any, needs: frozenset[str]) -> ViewOutputs:
        raise NotImplementedError

    def losses(self, model: nn.Module, outputs: ViewOutputs, batch: Any) -> dict[str, Tensor]:
        """Named, weighted scalar task-loss terms for one training batch."""
        raise NotImplementedError

    # -- distribution ---------------------------------------------------------------------
    @property
    def world(self) -> World:
        """This process's rank and the world size (rank 0 of 1 outside torchrun)."""
        return world()

    def eval_shard(self, n_batches: int) -> range:
        """The evaluation batch numbers of this rank: ``b`` with ``b % world_size == rank``."""
        return self.world.shard(n_batches)

    # -- evaluation and records -----------------------------------------------------------
    def eval_batches(self, split: str) -> Iterable[Any]:
        """This rank's evaluation batches of ``split`` ("val" or "test"); see step 6."""
        raise NotImplementedError

    def predict_step(self, model: nn.Module, batch: Any) -> dict[str, Any]:
        """``metric.update`` keyword arguments for one evaluation batch (eval mode, no_grad)."""
        raise NotImplementedError

    def record_fields(self) -> dict[str, Any]:
        """``benchmark``, ``protocol``, ``model`` (and optionally ``artifacts``)."""
        raise NotImplementedError
