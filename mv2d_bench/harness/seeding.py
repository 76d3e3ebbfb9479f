"""Seeding: one integer seed makes a CPU run repeatable.

:func:`seed_everything` seeds Python's, NumPy's and torch's global generators (model
initialisation, dropout, bottleneck sampling) and switches torch to deterministic algorithms.
:func:`derive_seed` gives independent, platform-stable sub-seeds (e.g. for the batch order), so
adding a random draw in one place never shifts another stream.
"""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch


def derive_seed(seed: int, *names: str) -> int:
    """A 63-bit seed from ``seed`` and stream names (sha256; same on every platform)."""
    text = "/".join(["mv2d-bench", str(int(seed)), *names])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def generator(seed: int, *names: str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed`."""
    return torch.Generator().manual_seed(derive_seed(seed, *names))


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this for deterministic matmuls on CUDA; harmless on the CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
