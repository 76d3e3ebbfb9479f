"""The Benchmark contract (a loader plugin) shared by every benchmark family.

A benchmark reads its published on-disk format itself and never downloads. Subclasses set the
class attributes and implement :meth:`verify` and :meth:`load` (and :meth:`prepare` when the family
has a cache). Families add their own ``load`` signatures (a split seed for classification, a trial
for ReID); the harness only needs what the family's task asks for.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ENV_ROOT = "MV2D_DATA"


class DataError(ValueError):
    """Bad or missing benchmark data: the message names the file, the field, what was expected."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The data root does not exist; the message says where the data comes from."""


@dataclass(frozen=True)
class DataCard:
    citation: str
    license: str
    url: str
    layout: str
    """The expected on-disk layout under the root, as a user would lay it out."""
    checksums: dict[str, str] = field(default_factory=dict)
    """sha256 of files relative to the root, where known."""
    notes: str = ""
    split_seeds: tuple[int, ...] = ()
    """The split seeds of the family's multi-split protocol (MVC: mvc/accuracy@2, five seeds;
    MvNNcor's per-data-set seed first where it has one). Empty: the family's default."""


class Benchmark:
    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    family: ClassVar[str] = ""  # "mvc", "reid" or "seg"
    task: ClassVar[str] = ""  # "classification", "retrieval" or "segmentation"
    views: ClassVar[tuple[str, ...]] = ()
    view_dims: ClassVar[tuple[int, ...] | None] = None
    num_classes: ClassVar[int | None] = None
    protocols: ClassVar[tuple[str, ...]] = ()
    """Protocol ids this benchmark is scored under; the first is the default."""
    root_subdir: ClassVar[str | None] = None
    """Folder or file name under ``$MV2D_DATA`` where this benchmark's data lives."""
    card: ClassVar[DataCard | None] = None

    def __init__(self, root: str | os.PathLike | None = None, **options: Any) -> None:
        self.options = options
        self.root = self.resolve_root(root)

    # -- where the data is -------------------------------------------------------------------
    def default_root(self) -> Path | None:
        """Where to look when neither ``--root`` nor ``$MV2D_DATA`` is given (None: nowhere)."""
        return None

    def resolve_root(self, root: str | os.PathLike | None) -> Path | None:
        """``root`` if given, then ``$MV2D_DATA/<root_subdir>``, then :meth:`default_root`."""
        if root is not None:
            path, source = Path(root).expanduser(), "--root"
        elif os.environ.get(ENV_ROOT) and self.root_subdir:
            path, source = Path(os.environ[ENV_ROOT]) / self.root_subdir, f"${ENV_ROOT}"
        else:
            path, source = self.default_root(), "the default location"
        if path is None or not path.exists():
            raise DataNotFoundError(self.missing_message(path, source))
        return path

    def missing_message(self, path: Path | None, source: str) -> str:
        where = f"{path} (from {source}) does not exist" if path else "no data root was given"
        msg = f"{self.name}: {where}."
        if self.card is not None:
            msg += f" Get the data from {self.card.url}; expected layout: {self.card.layout}."
        msg += f" Pass --root PATH or set {ENV_ROOT}"
        if self.root_subdir:
            msg += f" (looked for $MV2D_DATA/{self.root_subdir})"
        return msg + "."

    # -- what subclasses implement -----------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        """Check structure, dims, class counts and checksums. Returns a JSON-able report with
        ``ok`` (bool) and ``checks`` (list of {name, ok, detail})."""
        raise NotImplementedError

    def prepare(self) -> Path | None:
        """Build a cache if the family uses one (atomically). Returns its path."""
        return None

    def describe(self) -> dict[str, Any]:
        """Static facts for ``benchmarks list``."""
        return describe_class(type(self))


def describe_class(cls: type[Benchmark]) -> dict[str, Any]:
    out = _describe(cls)
    seeds = getattr(cls, "split_seeds", None)  # families with multi-split protocols (MVC)
    if callable(seeds):
        out["split_seeds"] = list(seeds())
    return out


def _describe(cls: type[Benchmark]) -> dict[str, Any]:
    return {
        "name": cls.name,
        "version": cls.version,
        "family": cls.family,
        "task": cls.task,
        "views": list(cls.views),
        "view_dims": list(cls.view_dims) if cls.view_dims else None,
        "num_classes": cls.num_classes,
        "protocols": list(cls.protocols),
        "url": cls.card.url if cls.card else None,
    }


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
