"""Run records: one JSON file per finished run, written by every task through :func:`write_record`.

Layout of a record (the JSON Schema in ``mv2d_bench/schemas/run-record.schema.json`` is the
authority once it exists)::

    {
      "schema_version": 1,
      "run_id": "<16 hex: sha256 of the canonical record without run_id>",
      "created": "2026-11-29T12:00:00+00:00",
      "benchmark": {"name", "version", "data_sha256", "split_id", "split_sha256", "trial"},
      "protocol": "mvc/accuracy@1",
      "objective": {"name", "version", "params", "distribution", "distribution_version"},
      "model": {"name", "params", "param_count"},
      "config": {... the full resolved run configuration ...},
      "seed": 0,
      "metrics": {"accuracy": 99.25, ...},
      "per_trial": [{"trial": 1, "metrics": {...}}, ...],
      "cost": {"train_seconds", "eval_seconds", "steps_per_second"},
      "environment": {"package_version", "git_revision", "torch", "python", "device"},
      "artifacts": {... optional: paths relative to the record, e.g. embeddings ...}
    }
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_id(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "run_id"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


def git_revision(start: str | os.PathLike | None = None) -> str | None:
    """The git revision of the source tree this package runs from, when it is a checkout."""
    here = Path(start) if start else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}", rev):
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    )
    return rev + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def environment(device: str | None = None) -> dict[str, Any]:
    import torch

    from mv2d_bench import __version__

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "package_version": __version__,
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": name,
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def record_filename(record: dict[str, Any]) -> str:
    bench = record["benchmark"]["name"]
    obj = record["objective"]["name"]
    trial = record["benchmark"].get("trial")
    trial_part = f"-t{trial}" if trial is not None else ""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{bench}-{obj}-s{record['seed']}{trial_part}")
    return f"{safe}-{record['run_id']}.json"


def finalize(record: dict[str, Any]) -> dict[str, Any]:
    """Fill ``schema_version``, ``created`` and the content-derived ``run_id``."""
    record = dict(record)
    record.setdefault("schema_version", SCHEMA_VERSION)
    record.setdefault("created", now_iso())
    record["run_id"] = content_id(record)
    return record


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (no partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(out_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Finalize and write ``record`` into ``out_dir`` atomically; return its path.

    The file name is derived from the content, so a different record never lands on an existing
    one; writing the same record twice is a no-op. An existing file with that name but other
    content is an error (never silently overwritten).
    """
    record = finalize(record)
    path = Path(out_dir) / record_filename(record)
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return path
        raise FileExistsError(f"{path} exists with different content; refusing to overwrite it")
    atomic_write_text(path, text)
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
