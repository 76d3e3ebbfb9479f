"""An MVC training step reads nothing back to the host (no .item(), bool() or nonzero inside the
step): on an asynchronous device every such read would stall the step. The finiteness of the
loss is recorded on the device and looked at every NONFINITE_CHECK_STEPS steps."""

from __future__ import annotations

import pytest
from torch.utils._python_dispatch import TorchDispatchMode

from mv2d_bench.config import load_config
from mv2d_bench.harness.runner import make_task
from mv2d_bench.harness.seeding import generator
from mv2d_bench.harness.trainer import Trainer

SYNC_OPS = ("aten._local_scalar_dense", "aten.nonzero", "aten.is_nonzero", "aten.item")


class HostReads(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if any(name.startswith(op) for op in SYNC_OPS):
            self.reads.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "objective,extra",
    [
        ("mv2d", ["model.fusion=relation-lowrank"]),
        ("mv2d", ["model.fusion=relation-full", "model.z_dim=8"]),
        ("mv2d", ["model.fusion=concat", "loss.rank_type=ranked-list"]),
        ("vib", ["model.fusion=mean"]),
    ],
)
def test_a_training_step_reads_nothing_back(objective, extra):
    cfg = load_config(
        overrides=[
            "run.benchmark=synthetic-mv",
            f"run.objective={objective}",
            "run.threads=1",
            "benchmark.samples=300",
            "model.hidden=[16, 8]",
            "train.progress=false",
            *extra,
        ]
    )
    trainer = Trainer(make_task(cfg), cfg)
    trainer.build()
    batches = list(trainer.task.train_batches(0, generator(0, "b")))
    trainer.model.train()
    trainer.train_step(batches[0])  # warm-up (lazy initialisation may read)
    with HostReads() as mode:
        trainer.train_step(batches[1])
    assert mode.reads == []
    trainer._check_finite(0)  # the epoch's one read: all finite, nothing raised
