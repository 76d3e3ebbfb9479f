"""Tasks by benchmark family. The trainer finds the task that serves a benchmark here.

``TASKS`` maps a benchmark family to ``"module:Class"`` (imported on first use, so the CLI and
the MVC path never import ReID or segmentation code).
"""

from __future__ import annotations

import importlib
from typing import Any

TASKS: dict[str, str] = {
    "mvc": "mv2d_bench.harness.tasks.mvc:MvcTask",
    "reid": "mv2d_bench.harness.tasks.reid:ReidTask",
    "seg": "mv2d_bench.harness.tasks.seg:SegTask",
}


def task_class(family: str) -> type:
    if family not in TASKS:
        raise LookupError(
            f"no training task for benchmark family {family!r}; known: {', '.join(TASKS)}"
        )
    module, _, name = TASKS[family].partition(":")
    return getattr(importlib.import_module(module), name)


def task_for(benchmark: str) -> type:
    """The Task class that trains ``benchmark`` (a registered benchmark name)."""
    from mv2d_bench import loaders

    return task_class(loaders.get(benchmark).family)


def sections_for(benchmark: str) -> dict[str, Any]:
    """The task-specific config sections of the task that serves ``benchmark``."""
    return dict(task_for(benchmark).sections)
