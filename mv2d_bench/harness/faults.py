"""Fault injection for the reliability tests: ``MV2D_FAULT`` makes this process SIGKILL itself at
a chosen point, so a test can kill a real run at an exact step (not at a time).

``MV2D_FAULT`` is a comma-separated list of ``point=N``:

- ``kill-after-step=N``: after the N-th optimiser step of this process (counted from the start
  of this process, 1-based, whatever epoch it is in);
- ``kill-in-checkpoint=N``: in the middle of writing the N-th checkpoint of this process (the
  temporary file half written, not yet renamed).

Without the variable nothing here has any effect.
"""

from __future__ import annotations

import os
import signal

ENV = "MV2D_FAULT"
_counts: dict[str, int] = {}


def _wanted(point: str) -> int | None:
    for item in os.environ.get(ENV, "").split(","):
        name, _, value = item.strip().partition("=")
        if name == point:
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"environment: {ENV}: {item!r} expects {point}=N") from None
    return None


def reached(point: str) -> None:
    """Count one more ``point``; SIGKILL this process when it is the configured one."""
    if ENV not in os.environ:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _wanted(point) == _counts[point]:
        os.kill(os.getpid(), signal.SIGKILL)
