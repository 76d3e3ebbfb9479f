"""Shared code of the LiDAR-RGB segmentation benchmarks (``nuscenes-lidarseg``, ``semantickitti``).

Dataset API (what the segmentation task and the scoring code use)::

    bench = mv2d_bench.loaders.create("semantickitti", root)      # or "nuscenes-lidarseg"
    refs = bench.scans("train")          # list[ScanRef], in the official order
    scan = bench.read_scan(refs[0])      # Scan: points, labels, camera projections

A :class:`ScanRef` is plain data (paths and camera matrices; picklable for DataLoader
workers). :meth:`SegBenchmark.read_scan` reads the points (float32 x, y, z, intensity; the
nuScenes ring index separately), maps the labels to the benchmark's classes (0 = ignore, then
1..K; a label file whose length differs from its scan, or an unknown raw id, is a
:class:`~mv2d_bench.loaders.base.DataError` naming the file) and projects the points into every
camera with the benchmark's visibility rule (:mod:`mv2d_bench.loaders.projection`).

Splits are named ``train``, ``val`` (the split the ``*/val@1`` protocols score) and, for
SemanticKITTI, ``test`` (no labels).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders.base import Benchmark, DataError
from mv2d_bench.loaders.projection import project


@dataclass(frozen=True)
class CameraRef:
    name: str
    """The camera channel: CAM_FRONT ... (nuScenes), image_2 (SemanticKITTI)."""
    image: str
    """Path of the image file."""
    matrix: tuple[tuple[float, ...], ...]
    """3 x 4 LiDAR -> pixel projection (``uvw = M @ (x, y, z, 1)``), float64 values."""
    size: tuple[int, int] | None = None
    """(width, height) when the tables give it; None: read from the image file."""


@dataclass(frozen=True)
class ScanRef:
    id: str
    """nuScenes: the LIDAR_TOP sample_data token; SemanticKITTI: ``"<seq>/<frame>"``."""
    points: str
    labels: str | None
    cameras: tuple[CameraRef, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Scan:
    id: str
    points: np.ndarray
    """(N, 4) float32: x, y, z, intensity."""
    ring: np.ndarray | None
    """(N,) int64 laser ring index (nuScenes), None where the format has none."""
    labels: np.ndarray | None
    """(N,) uint8 classes 0..K (0 = ignore), None for unlabelled splits."""
    images: tuple[str, ...]
    image_sizes: tuple[tuple[int, int], ...]
    """(width, height) per camera."""
    visible: np.ndarray
    """(cameras, N) bool: the camera sees the point (the benchmark's visibility rule)."""
    uv: np.ndarray
    """(cameras, N, 2) float32 pixel coordinates (0 where not visible)."""

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def seen(self) -> np.ndarray:
        """(N,) bool: at least one camera sees the point."""
        return self.visible.any(axis=0)


def read_points(path: str | os.PathLike, width: int) -> np.ndarray:
    """A float32 point file of ``width`` values per point, as (N, width)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: point file not found")
    size = path.stat().st_size
    if size % (4 * width):
        raise DataError(
            f"{path}: {size} bytes is not a whole number of points (expected float32 x {width}, "
            f"{4 * width} bytes per point)"
        )
    return np.fromfile(path, dtype=np.float32).reshape(-1, width)


def read_label_file(
    path: str | os.PathLike,
    dtype: Any,
    n_points: int,
    points: str,
    what: str = "label",
    error: type[Exception] = DataError,
) -> np.ndarray:
    """One ``what`` (label, prediction) per point of the scan ``points``; a missing file or a
    length different from the scan's is an ``error`` naming both files."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file not found (one per scan; scan {points})")
    size, item = path.stat().st_size, np.dtype(dtype).itemsize
    if size != n_points * item:
        found = f"{size // item} {what}s" if size % item == 0 else f"{size} bytes"
        raise error(
            f"{path}: {found} for {n_points} points in {points}; expected one "
            f"{np.dtype(dtype).name} {what} per point ({n_points * item} bytes)"
        )
    return np.fromfile(path, dtype=dtype)


def bool_option(value: Any, option: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValueError(f"option '{option}': expected true or false, got {value!r}")


def check_options(benchmark: str, options: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"{benchmark}: unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(sorted(known))}"
        )


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the image header (PIL reads no pixel data for this)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except FileNotFoundError:
        raise DataError(f"{path}: camera image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def listing_sha256(files: list[str | os.PathLike], root: Path) -> str:
    """sha256 over ``relative-path<TAB>size`` lines of ``files`` (sorted): identifies a tree
    without reading its content."""
    h = hashlib.sha256()
    for f in sorted(str(Path(f).relative_to(root)) for f in files):
        h.update(f"{f}\t{(root / f).stat().st_size}\n".encode())
    return h.hexdigest()


class SegBenchmark(Benchmark):
    """Base of the segmentation benchmarks (see the module docstring)."""

    family: ClassVar[str] = "seg"
    task: ClassVar[str] = "segmentation"
    views: ClassVar[tuple[str, ...]] = ("lidar", "camera")
    cameras: ClassVar[tuple[str, ...]] = ()
    visibility_rule: ClassVar[str] = ""
    point_width: ClassVar[int] = 4
    """float32 values per point in the point files."""
    eval_split: ClassVar[str] = "val"

    # -- what subclasses implement ----------------------------------------------------------
    def split_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def scans(self, split: str) -> list[ScanRef]:
        raise NotImplementedError

    def map_labels(self, raw: np.ndarray, source: str) -> np.ndarray:
        raise NotImplementedError

    def read_raw_labels(self, ref: ScanRef, n_points: int) -> np.ndarray:
        raise NotImplementedError

    def split_id(self, split: str) -> str:
        raise NotImplementedError

    def write_predictions(self, folder: str | os.PathLike, scan_id: str, pred: np.ndarray) -> Path:
        """Write one scan's predicted classes (1..K) in the benchmark's submission format."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def check_split(self, split: str) -> None:
        if split not in self.split_names():
            raise ValueError(
                f"{self.name}: unknown split {split!r}; expected one of "
                f"{', '.join(self.split_names())}"
            )

    def read_scan(self, ref: ScanRef, labels: bool = True, cameras: bool = True) -> Scan:
        """Points, mapped labels (when the scan has them and ``labels``) and projections."""
        raw = read_points(ref.points, self.point_width)
        points = np.ascontiguousarray(raw[:, :4])
        ring = raw[:, 4].astype(np.int64) if raw.shape[1] > 4 else None
        mapped = None
        if labels and ref.labels is not None:
            mapped = self.map_labels(self.read_raw_labels(ref, len(points)), ref.labels)
        cams = ref.cameras if cameras else ()
        n = len(points)
        visible = np.zeros((len(cams), n), dtype=bool)
        uv = np.zeros((len(cams), n, 2), dtype=np.float32)
        sizes = []
        for i, cam in enumerate(cams):
            size = cam.size or image_size(cam.image)
            sizes.append(size)
            visible[i], uv[i] = project(
                points[:, :3], np.array(cam.matrix), *size, self.visibility_rule
            )
        return Scan(
            id=ref.id,
            points=points,
            ring=ring,
            labels=mapped,
            images=tuple(c.image for c in cams),
            image_sizes=tuple(sizes),
            visible=visible,
            uv=uv,
        )

    def checksum_checks(self) -> list[dict[str, Any]]:
        """verify() checks: the files of the data card's checksums that exist under the root."""
        from mv2d_bench.loaders.base import sha256_file

        checks = []
        for rel, expected in (self.card.checksums if self.card else {}).items():
            path = self.root / rel
            if path.is_file():
                got = sha256_file(path)
                detail = got if got == expected else f"{got} (expected {expected})"
                checks.append({"name": f"sha256 {Path(rel).name}", "ok": got == expected,
                               "detail": detail})  # fmt: skip
        return checks

    def report(self, checks: list[dict[str, Any]]) -> dict[str, Any]:
        return {"benchmark": self.name, "root": str(self.root),
                "ok": all(c["ok"] for c in checks), "checks": checks}  # fmt: skip

    def split_sha256(self, splits: list[str]) -> str:
        """sha256 of the scan ids of ``splits`` in order (what a run trained and scored on)."""
        h = hashlib.sha256()
        for split in splits:
            h.update(f"[{split}]\n".encode())
            for ref in self.scans(split):
                h.update(f"{ref.id}\n".encode())
        return h.hexdigest()
