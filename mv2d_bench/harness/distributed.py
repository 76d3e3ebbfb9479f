"""The process group a run belongs to: rank, world size, backend (torch.distributed).

``torchrun --nproc-per-node N $(command -v mv2d-bench) run ...`` starts N processes with the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_from_env` joins them (NCCL when the run is on CUDA, gloo on the CPU).
A process group that the caller already initialised (tests: ``init_process_group`` with a
``FileStore``) is used as it is. Without either, the run is one process (rank 0 of 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    backend: str | None = None
    """``"gloo"`` / ``"nccl"``, None for a single process without a process group."""

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes records, logs and checkpoints."""
        return self.rank == 0

    def shard(self, n_batches: int) -> range:
        """The batch numbers this rank takes of ``n_batches``: ``b`` with ``b % size == rank``."""
        return range(self.rank, n_batches, self.size)


def world() -> World:
    """The current process group (a single process when torch.distributed is not initialised)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))
    return World()
