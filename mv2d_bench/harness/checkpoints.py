"""Checkpoints: the whole training state in one file, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module.state_dict()`` (kept in memory for the best epoch)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
