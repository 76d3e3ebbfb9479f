"""The JSONL log of a run: one JSON object per line (``{"event": ..., ...}``).

Lines are written and flushed as they happen into ``<name>.jsonl.part``; :meth:`close` renames
the file to ``<name>.jsonl`` when the run finished, so a complete log never sits beside a
crashed run's partial one under the same name.

Resuming: the trainer keeps the rows written so far in its checkpoint and reopens the log with
``JsonlLog(path, rows=...)``, which rewrites the ``.part`` file to exactly those rows (atomically)
before appending: lines a killed process wrote after its last checkpoint are dropped (that work
is redone), so a resumed run's log holds every epoch exactly once.
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
    def __init__(
        self, path: str | os.PathLike | None, rows: list[dict[str, Any]] | None = None
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows or []]
        """Every row of the log so far (what a checkpoint keeps)."""
        self._fh = None
        start = float(self.rows[-1].get("time", 0.0)) if self.rows else 0.0
        self._t0 = time.perf_counter() - start
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._part = self.path.with_name(self.path.name + ".part")
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.rows)
            tmp = self._part.with_name(self._part.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._part)
            self._fh = open(self._part, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, event: str, **fields: Any) -> None:
        row = {"event": event, "time": round(time.perf_counter() - self._t0, 4), **fields}
        row = _clean(row)
        self.rows.append(row)
        if self._fh is None:
            return
        self._fh.write(json.dumps(row, sort_keys=True) + "\n")
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
