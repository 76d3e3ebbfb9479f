"""The process group a run belongs to: rank, world size, backend (torch.distributed).

``torchrun --nproc-per-node N $(command -v mv2d-bench) run ...`` (or ``torchrun ... -m mv2d_bench
run ...``) starts N processes with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` set; :func:`init_from_env` joins them: NCCL when the run is on CUDA (each process
on ``cuda:LOCAL_RANK``), gloo on the CPU. A process group the caller already initialised (tests:
``init_process_group`` with a ``FileStore``) is used as it is. Without either the run is one
process (rank 0 of 1) and nothing here talks to other processes.

What the harness does with the group (see :mod:`mv2d_bench.harness.trainer`): training data is
sharded per rank (``train.batch_size`` stays the global batch; :meth:`World.share`), the model is
wrapped in ``DistributedDataParallel``, evaluation batch ``b`` goes to rank ``b % world_size``
(:meth:`World.shard`) and the protocol's metric syncs its states, and only rank 0 writes records,
logs and checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    backend: str | None = None
    """``"gloo"`` / ``"nccl"``, None for a single process without a process group."""
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes records, logs and checkpoints."""
        return self.rank == 0

    def shard(self, n_batches: int) -> range:
        """The batch numbers this rank takes of ``n_batches``: ``b`` with ``b % size == rank``."""
        return range(self.rank, n_batches, self.size)

    def share(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's contiguous part ``[lo, hi)`` of the items ``[start, stop)`` of a global
        batch: ``size`` parts whose lengths differ by at most one, the longer ones first (as
        ``torch.tensor_split``)."""
        n = stop - start
        base, extra = divmod(n, self.size)
        lo = start + self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)


def world() -> World:
    """The current process group (a single process when torch.distributed is not initialised)."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return World(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()), local)
    return World()


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when absent)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(
            f"environment: WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}"
        ) from None


def init_from_env(device: str) -> bool:
    """Join the process group torchrun describes in the environment; True when this call
    initialised it (and :func:`shutdown` should end it). ``device`` is ``run.device``: a CUDA
    device means NCCL (and this process is pinned to ``cuda:LOCAL_RANK``), else gloo."""
    if not dist.is_available() or dist.is_initialized() or env_world_size() <= 1:
        return False
    cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"run.device is {device!r} but torch sees no CUDA device")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return True


def shutdown(synchronize: bool = False) -> None:
    """End the process group. ``synchronize`` (a run that ended normally on every rank): a
    barrier first, so that no rank tears its gloo connections down while a peer is still in
    its last collective or writing the record (a rank that left early was seen to abort with
    'terminate called without an active exception'). After an error the group is ended at
    once: a barrier there could wait for a rank that is stuck in another collective."""
    if dist.is_available() and dist.is_initialized():
        if synchronize and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def run_device(device: torch.device) -> torch.device:
    """``device`` for this process: under a process group a CUDA device becomes
    ``cuda:LOCAL_RANK`` (one GPU per process), anything else stays."""
    w = world()
    if w.size > 1 and device.type == "cuda":
        return torch.device("cuda", w.local_rank)
    return device


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. ``task.setup()``, which may build a data cache), the
    other ranks after it, so that only rank 0 writes shared files."""
    w = world()
    if w.size > 1 and not w.is_main:
        dist.barrier()
    yield
    if w.size > 1 and w.is_main:
        dist.barrier()


def broadcast(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; small objects only)."""
    if world().size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (pickled; small objects only)."""
    w = world()
    if w.size == 1:
        return [obj]
    out: list[Any] = [None] * w.size
    dist.all_gather_object(out, obj)
    return out


def all_gather_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` (same shape on every rank) stacked in rank order: (size, ...)."""
    w = world()
    if w.size == 1:
        return tensor[None]
    out = [torch.empty_like(tensor) for _ in range(w.size)]
    dist.all_gather(out, tensor.contiguous())
    return torch.stack(out)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over the ranks (``tensor`` itself in one process)."""
    if world().size == 1:
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world().size


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Rank ``src``'s buffers (BatchNorm running statistics) on every rank, so that evaluation
    of the same weights gives every rank's items the outputs rank ``src``'s model gives."""
    if world().size == 1:
        return
    for buf in module.buffers():
        dist.broadcast(buf, src)
