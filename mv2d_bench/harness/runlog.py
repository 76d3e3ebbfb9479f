"""The JSONL log of a run: one JSON object per line (``{"event": ..., ...}``).

Lines are written and flushed as they happen into ``<name>.jsonl.part``; :meth:`close` renames
the file to ``<name>.jsonl`` when the run finished, so a complete log never sits beside a
crashed run's partial one under the same name.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class JsonlLog:
    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None
        self._fh = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._part = self.path.with_name(self.path.name + ".part")
            self._fh = open(self._part, "w", encoding="utf-8")  # noqa: SIM115
        self._t0 = time.perf_counter()

    def write(self, event: str, **fields: Any) -> None:
        if self._fh is None:
            return
        row = {"event": event, "time": round(time.perf_counter() - self._t0, 4), **fields}
        self._fh.write(json.dumps(_clean(row), sort_keys=True) + "\n")
        self._fh.flush()

    def close(self, complete: bool = True) -> Path | None:
        if self._fh is None:
            return None
        self._fh.close()
        self._fh = None
        if complete:
            os.replace(self._part, self.path)
            return self.path
        return self._part


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: not a JSON line ({exc})") from exc
    return rows
