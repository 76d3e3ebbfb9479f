"""Shared fixtures. Tests run with ``--import-mode=importlib`` and have no ``__init__.py``:
mvlearn installs a top-level ``tests`` package into site-packages that would shadow ours."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    for candidate in (os.environ.get("MV2D_SHARED_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files in ../shared/data (skips when this checkout has none)."""
    path = _shared_data()
    if path is None:
        pytest.skip("real data not found: ../shared/data is absent (set MV2D_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _no_rand_perm_env(monkeypatch):
    """Tests never pick up a user's $MV2D_SYSU_RAND_PERM (a test that wants it sets it)."""
    monkeypatch.delenv("MV2D_SYSU_RAND_PERM", raising=False)
