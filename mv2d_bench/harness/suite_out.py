"""What a suite keeps in its ``--out`` folder, and how it reads it back.

::

    OUT/<benchmark>-<objective>-s<seed>-<run_id>.json    run records (write_record)
    OUT/<stem>-<key>.failed.json                           failure records (one per failed run)
    OUT/logs/<stem>-<key12>.jsonl                          training logs (the runner)
    OUT/logs/<stem>-<key12>.failed.log                     the traceback of a failed run
    OUT/checkpoints/<stem>-<key12>.pt                      resumable training state (while a
                                                           run is unfinished)
    OUT/locks/<stem>-<key16>.lock                          claims of running runs (runlock)

A run is identified by its key (:func:`mv2d_bench.config.run_key`: the resolved configuration
without volatile keys), never by file names. Reading the folder, every ``*.json`` file is one of:

* a run record (a JSON object with ``config`` and ``metrics``, passing the run-record schema and
  with a ``run_id`` that matches its content): its run is done;
* a failure record (``kind`` = :data:`FAILURE_KIND`): its run failed and will be redone;
* unreadable or broken (not JSON, truncated, not UTF-8, a record that breaks the schema or was
  edited after it was written): it is **reported by name and moved aside** to
  ``<name>.unreadable`` (never deleted, never overwritten), and its run is redone;
* any other JSON file: reported once and left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mv2d_bench.config import run_key

FAILURE_KIND = "mv2d-bench/run-failure"
FAILURE_SUFFIX = ".failed.json"
ASIDE_SUFFIX = ".unreadable"


def run_stem(benchmark: str, objective: str, seed: int, key: str, n: int = 12) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{benchmark}-{objective}-s{seed}")
    return f"{stem}-{key[:n]}"


@dataclass
class Problem:
    path: Path
    what: str
    moved_to: Path | None = None
    broken: bool = False
    """A record-like file that cannot be used (moved aside), not merely some other JSON."""

    def __str__(self) -> str:
        if self.moved_to is None and self.broken:
            return f"{self.path}: {self.what} - would be moved aside and its run redone"
        if self.moved_to is not None:
            return (
                f"{self.path}: {self.what} - moved aside to {self.moved_to.name}; its run will "
                "be redone"
            )
        return f"{self.path}: {self.what} - not a run record; left as it is"


@dataclass
class OutIndex:
    """The run records and failure records in one ``--out`` folder, by run key; re-read with
    :meth:`refresh` (only new or changed files are parsed again)."""

    folder: Path
    records: dict[str, Path] = field(default_factory=dict)
    failures: dict[str, Path] = field(default_factory=dict)
    _seen: dict[Path, tuple[int, int, str | None, str]] = field(default_factory=dict)

    def refresh(self, move: bool = True) -> list[Problem]:
        """Re-read the folder; returns the problems found in files not seen before (bad files
        are moved aside, see the module doc; with ``move=False`` only reported)."""
        problems: list[Problem] = []
        seen: dict[Path, tuple[int, int, str | None, str]] = {}
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("*.json")):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                stamp = (st.st_mtime_ns, st.st_size)
                old = self._seen.get(path)
                if old is not None and old[:2] == stamp:
                    seen[path] = old
                    continue
                if not path.is_file():
                    kind, key, problem = "other", None, Problem(path, "not a file")
                else:
                    kind, key, problem = _classify(path)
                if problem is not None:
                    problem.broken = kind == "broken"
                    if kind == "broken" and not move:
                        problems.append(problem)  # reported; not a record, so its run is pending
                        continue
                    if kind == "broken":
                        problem.moved_to = move_aside(path)
                        if problem.moved_to is None:
                            continue  # another process moved it first (and reported it)
                    problems.append(problem)
                    if problem.moved_to is not None:
                        continue
                seen[path] = (*stamp, key, kind)
        self._seen = seen
        self.records = {k: p for p, (_, _, k, kind) in seen.items() if kind == "record" and k}
        self.failures = {k: p for p, (_, _, k, kind) in seen.items() if kind == "failure" and k}
        return problems


def _classify(path: Path) -> tuple[str, str | None, Problem | None]:
    """(kind, run key, problem): kind is record, failure, other or broken."""
    from mv2d_bench.leaderboards.records import content_id
    from mv2d_bench.leaderboards.schema import check

    try:
        data = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_no_constant)
    except FileNotFoundError:
        return "other", None, None
    except OSError as exc:
        return "other", None, Problem(path, f"cannot be read ({exc.strerror or exc})")
    except UnicodeDecodeError as exc:
        return "broken", None, Problem(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    except (json.JSONDecodeError, ValueError) as exc:
        return "broken", None, Problem(path, f"not valid JSON ({exc}); truncated or corrupt")
    if not isinstance(data, dict):
        return "other", None, Problem(path, f"a JSON {type(data).__name__}, not an object")
    if data.get("kind") == FAILURE_KIND:
        key = data.get("run_key")
        if not isinstance(key, str):
            return "broken", None, Problem(path, "a failure record without its 'run_key'")
        return "failure", key, None
    if not isinstance(data.get("config"), dict) or "metrics" not in data:
        return "other", None, Problem(path, "a JSON object without 'config' and 'metrics'")
    violations = check(data, "run-record", str(path))
    if violations:
        first = str(violations[0]).removeprefix(f"{path}: ")
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        return "broken", None, Problem(path, f"breaks the run-record schema: {first}{more}")
    try:
        edited = data.get("run_id") != content_id(data)
    except (TypeError, ValueError):
        edited = True
    if edited:
        return (
            "broken",
            None,
            Problem(
                path, "its run_id does not match its content (the record was changed after writing)"
            ),
        )
    return "record", run_key(data["config"]), None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (expected a finite number)")


def move_aside(path: Path) -> Path | None:
    """Rename ``path`` to a free ``<name>.unreadable[.N]`` (None when it is gone already)."""
    for i in range(1000):
        target = path.with_name(path.name + ASIDE_SUFFIX + (f".{i}" if i else ""))
        try:
            os.link(path, target)  # never replaces an existing file
        except FileExistsError:
            continue
        except FileNotFoundError:
            return None
        except OSError:  # no hard links here: a plain rename (target is free)
            if target.exists():
                continue
            try:
                os.rename(path, target)
            except FileNotFoundError:
                return None
            return target
        try:
            os.unlink(path)
        except FileNotFoundError:  # another process moved it too: keep one copy
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            return None
        return target
    raise OSError(f"{path}: cannot move it aside (1000 {ASIDE_SUFFIX} copies exist)")


def failure_record(
    *, key: str, benchmark: str, setting: str, objective: str, seed: int, error: dict[str, Any],
    log: str, config: dict[str, Any], attempts: int, checkpoint: str | None,
) -> dict[str, Any]:  # fmt: skip
    from mv2d_bench.leaderboards.records import now_iso

    return {
        "kind": FAILURE_KIND,
        "schema_version": 1,
        "run_key": key,
        "benchmark": benchmark,
        "setting": setting,
        "objective": objective,
        "seed": seed,
        "error": f"{error.get('type', 'Error')}: {error.get('message', '')}".strip(),
        "exception": error.get("type"),
        "log": log,
        "checkpoint": checkpoint,
        "attempts": attempts,
        "created": now_iso(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "config": config,
    }


def read_attempts(path: Path | None) -> int:
    """How often the run failed before (from its failure record; 0 without one)."""
    if path is None:
        return 0
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("attempts", 1)
    except (OSError, ValueError, AttributeError):
        return 1
    return value if isinstance(value, int) and value > 0 else 1
