"""Checkpoints: the whole training state in one file, written atomically, read safely.

:func:`save_checkpoint` writes a temporary file in the target's folder, flushes and fsyncs it,
renames it over the target (``os.replace``, atomic) and fsyncs the folder: a crash at any moment
leaves either the previous checkpoint or the new one, never a mix. :func:`load_checkpoint` reads
with ``torch.load(weights_only=True)`` (tensors and plain containers only: a checkpoint cannot
run code), so everything saved here is tensors, numbers, strings, lists, tuples and dicts
(:func:`rng_state` turns NumPy's and Python's generator states into such values).
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mv2d_bench.harness import faults

FORMAT = 2
"""Layout version of the checkpoint dict (see ``Trainer.checkpoint_state``)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the field."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                torch.save(state, f)
            except RuntimeError as exc:  # torch's writer reports a short write (a full disk) so
                raise OSError(
                    f"{path}: cannot write the checkpoint ({one_line_error(exc)}); check the "
                    "free space and permissions of its folder"
                ) from exc
            f.flush()
            faults.reached("kill-in-checkpoint")
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def one_line_error(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict (``weights_only=True``); one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as exc:  # ValueError: bytes that are no checkpoint at all, read as a broken pickle
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint (expected a file written by mv2d-bench run "
            f"--checkpoint; {first})"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(state).__name__}")
    return state


def states_equal(a: Any, b: Any) -> bool:
    """Bitwise equality of nested checkpoint values (tensors by dtype and ``torch.equal``; dicts,
    lists and tuples element by element; anything else by ``==``): two runs' checkpoints are
    the same run exactly when this holds for their states."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(states_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(states_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    return a == b


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module.state_dict()`` (kept in memory for the best epoch)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def rng_state() -> dict[str, Any]:
    """Every global random generator of this process: Python's, NumPy's, torch's CPU and CUDA
    generators (as weights-only values)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
