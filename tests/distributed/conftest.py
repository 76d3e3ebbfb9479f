"""torchrun on the CPU for the distributed tests: ``python -m torch.distributed.run --standalone
--nproc-per-node N ...`` (gloo, a free local port, one torch thread per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _torchrun(
    nproc: int, *args: str, timeout: int = 300, cuda: bool = False, env: dict | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", *args]  # fmt: skip
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def torchrun():
    """``torchrun(nproc, *args)`` -> CompletedProcess (stdout, stderr, returncode)."""
    return _torchrun
