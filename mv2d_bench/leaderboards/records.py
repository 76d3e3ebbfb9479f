"""Run records: one JSON file per finished run, written by every task through :func:`write_record`.

The JSON Schema ``mv2d_bench/schemas/run-record.schema.json`` (draft 2020-12) is the authority;
:func:`write_record` refuses a record that breaks it. Layout::

    {
      "schema_version": 1,                      # filled by finalize()
      "run_id": "<16 hex: sha256 of the canonical record without run_id>",   # finalize()
      "created": "2026-11-29T12:00:00+00:00",   # finalize() when absent; UTC offset required
      "benchmark": {"name": "hand", "version": 1, "data_sha256": "<64 hex>",
                    "split_id": "...", "split_sha256": "<64 hex>",
                    "trial": null},              # 1..T only for "split" protocols (RegDB)
      "protocol": "mvc/accuracy@1",
      "objective": {"name", "version", "params": {...}, "distribution", "distribution_version"},
      "model": {"name", "params": {...}, "param_count"},
      "config": {... the full resolved run configuration ...},
      "seed": 0,
      "metrics": {"accuracy": 99.25},           # the mean over per_trial
      "per_trial": [{"trial": 1, "metrics": {"accuracy": 99.25}}],
      "cost": {"train_seconds", "eval_seconds", "steps_per_second"},
      "environment": {"package_version", "git_revision" (null when unknown), "torch", "python",
                      "device", "cpu", "cpu_capability", "blas", "cuda_device"},
                                                # environment() fills this
      "artifacts": {"embeddings": "hand-mv2d-s0.embeddings.npz"},  # optional
      "protocol_gallery": {"source": "rand_perm_cam", "rand_perm_cam_sha256": "<64 hex>",
                           "seeds": null}   # SYSU-MM01 only: where the trial galleries came from
    }

``Score.record_fields()`` (protocols/base.py) gives ``metrics`` and ``per_trial`` from a score.

Artifacts (optional): paths relative to the folder the record is written to, under these keys:

* ``"embeddings"`` (:data:`ARTIFACT_EMBEDDINGS`): an ``.npz`` holding the test representations of
  the best epoch, keys :data:`EMBEDDING_KEYS`: ``embeddings`` float (N, D) (the fused z, or the
  per-view means concatenated) and ``labels`` int (N,). ``leaderboard render`` projects it to 2-D
  (the paper's Figures 9 and 10). Write the artifact first, then the record.

Grouping: a leaderboard averages records that agree on benchmark (name, version, data sha256),
protocol, the gallery source (``protocol_gallery``: never records of different gallery sources
or permutation files), objective (name, version, params, distribution), model (name, params),
split, and the config with the keys in :data:`VOLATILE_CONFIG_KEYS` removed at any depth
(seeds, trials, paths, devices, progress switches). Keep run-specific values under those names
so that they do not split entries; every other config difference (epochs, lr, z_dim ...) makes
a separate entry.

Files are named ``<benchmark>-<objective>-s<seed>[-t<trial>]-<run_id>.json``
(:data:`RECORD_NAME_RE`); ``leaderboard build DIR`` reads the files with such names under DIR.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
ARTIFACT_EMBEDDINGS = "embeddings"
EMBEDDING_KEYS = ("embeddings", "labels")
RECORD_NAME_RE = re.compile(r"^.+-[0-9a-f]{16}\.json$")
VOLATILE_CONFIG_KEYS = frozenset(
    {
        "seed",
        "seeds",
        "trial",
        "trials_run",
        "root",
        "data_root",
        "out",
        "out_dir",
        "output",
        "output_dir",
        "run_dir",
        "log",
        "log_dir",
        "log_file",
        "cache",
        "checkpoint_every",
        "cache_dir",
        "device",
        "devices",
        "num_workers",
        "workers",
        "threads",
        "progress",
        "quiet",
        "verbose",
        "resume",
        "checkpoint",
        "checkpoint_dir",
        "save_embeddings",
        "rand_perm_cam",  # a path (SYSU-MM01); the record's protocol_gallery has its sha256
        "preset",  # a label (reid.preset: the weights guard), not a setting
    }
)


class RecordError(ValueError):
    """A record that cannot be written or read; the message names the file and the field."""


def canonical_json(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def content_id(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "run_id"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


def to_jsonable(obj: Any, path: str = "$") -> Any:
    """A JSON-ready copy of ``obj``: numpy scalars and arrays become numbers and lists, paths
    become strings, tuples become lists. NaN, inf and other objects raise :class:`RecordError`
    naming the field."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise RecordError(f"{path}: {obj!r} is not allowed (expected a finite number)")
        return float(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise RecordError(f"{path}: key {k!r} is not a string (JSON keys are strings)")
            out[k] = to_jsonable(v, f"{path}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return to_jsonable(tolist(), path)
    raise RecordError(f"{path}: {type(obj).__name__} is not JSON (expected numbers, strings ...)")


def git_revision(start: str | os.PathLike | None = None) -> str | None:
    """The commit of the source checkout this package runs from (``-dirty`` when tracked files
    changed), or None when it does not run from a git checkout of itself (an installed copy)."""
    here = Path(start) if start else Path(__file__).resolve().parents[1]
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if top.returncode != 0:
            return None
        lines = top.stdout.split()
        if len(lines) != 2 or not re.fullmatch(r"[0-9a-f]{40}", lines[1]):
            return None
        root, rev = Path(lines[0]), lines[1]
        if start is None:
            # An installed copy inside some other repository (a venv in a checkout) is not it.
            ours = Path(__file__).resolve().parents[1] / "__init__.py"
            mine = root / "mv2d_bench" / "__init__.py"
            if not mine.exists() or mine.resolve() != ours:
                return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def environment(device: str | None = None) -> dict[str, Any]:
    import torch

    from mv2d_bench import __version__

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    from mv2d_bench.harness.machine import machine_info

    return {
        "package_version": __version__,
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": name,
        **machine_info(device),  # cpu, cpu_capability, blas, cuda_device
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
    """A JSON-ready copy with ``schema_version``, ``created`` and the content-derived ``run_id``."""
    if not isinstance(record, dict):
        raise RecordError(f"a record is a JSON object, got {type(record).__name__}")
    record = to_jsonable(record)
    record.setdefault("schema_version", SCHEMA_VERSION)
    record.setdefault("created", now_iso())
    record["run_id"] = content_id(record)
    return record


def check_record(record: dict[str, Any], file: str = "") -> list[Any]:
    """Schema violations of ``record`` (a list of :class:`~.schema.Violation`)."""
    from mv2d_bench.leaderboards.schema import check

    return check(record, "run-record", file)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: Path, text: str, *, exclusive: bool = False) -> bool:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so that no reader
    ever sees a partial file. With ``exclusive`` an existing ``path`` is never replaced: returns
    False when it already existed (whatever its content), True when this call created it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _default_mode())  # mkstemp makes 0600; give the usual umask permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic create-if-absent
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_record(
    out_dir: str | os.PathLike, record: dict[str, Any], *, validate: bool = True
) -> Path:
    """Finalize, check against the schema, and write ``record`` into ``out_dir`` atomically;
    return its path.

    The file name is derived from the content, so a different record never lands on an existing
    one; writing the same record twice is a no-op. An existing file with that name but other
    content is an error (never silently overwritten). A record that breaks the schema raises
    :class:`RecordError` listing every violation, and nothing is written.
    """
    record = finalize(record)
    if validate:
        problems = check_record(record)
        if problems:
            lines = "\n  ".join(str(v) for v in problems)
            raise RecordError(f"run record for {out_dir} breaks the schema:\n  {lines}")
    path = Path(out_dir) / record_filename(record)
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    if atomic_write_text(path, text, exclusive=True):
        return path
    if path.read_text(encoding="utf-8") == text:
        return path
    raise FileExistsError(f"{path} exists with different content; refusing to overwrite it")


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN / Infinity, which JSON does not have: a number was lost
    raise _NonFinite(f"holds {name}, which is not JSON; expected finite numbers")


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in ``path`` (a :class:`RecordError` names the file when it is not one)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from exc
    except _NonFinite as exc:
        raise RecordError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text ({exc})") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def find_records(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Record files: each file given, and under each folder (recursively) the files named as
    :func:`write_record` names them, in sorted order. A missing path raises FileNotFoundError."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*.json") if RECORD_NAME_RE.match(f.name))
        elif p.is_file():
            yield p
        else:
            raise FileNotFoundError(f"{p}: no such file or folder (expected run records)")


def strip_volatile(config: Any) -> Any:
    """``config`` without the :data:`VOLATILE_CONFIG_KEYS` (at any depth)."""
    if isinstance(config, dict):
        return {k: strip_volatile(v) for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}
    if isinstance(config, list):
        return [strip_volatile(v) for v in config]
    return config
