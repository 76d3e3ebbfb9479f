"""Segmentation submissions: per-scan prediction files in each benchmark's official format.

* nuScenes-lidarseg (the devkit's ``LidarSegEval``): ``<folder>/lidarseg/<split>/<lidar
  sample_data token>_lidarseg.bin``, one uint8 per point in 1..16, ``<split>`` = ``val``
  (v1.0-trainval) or ``mini_val`` (v1.0-mini).
* SemanticKITTI (semantic-kitti-api's ``evaluate_semantics.py``):
  ``<folder>/sequences/NN/predictions/NNNNNN.label``, one uint32 per point holding the raw id
  (``learning_map_inv`` of the class; only the low 16 bits are read back, through
  ``learning_map``).

:func:`score_nuscenes_folder` / :func:`score_semantickitti_folder` score such a folder against
the labels of the data root, scan by scan, through the protocol's streaming metric. Every scan of
the validation split needs its file, with one prediction per point; a file that belongs to no
scan of the split is an error too. The writers write each file atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mv2d_bench.leaderboards.protocols.base import Score
from mv2d_bench.loaders import semantickitti_classes as kc
from mv2d_bench.loaders.base import DataError

NUSCENES_SPLIT_DIRS = {"val": "v1.0-trainval", "mini_val": "v1.0-mini"}


class SubmissionError(DataError):
    """A submission folder that does not match its split; the message names the file."""


def _atomic_write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(np.ascontiguousarray(array).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def write_nuscenes_predictions(folder: str | Path, split: str, token: str, pred: Any) -> Path:
    """Write ``pred`` (classes 1..16) as ``<folder>/lidarseg/<split>/<token>_lidarseg.bin``."""
    pred = np.asarray(pred)
    if pred.ndim != 1 or (pred.size and (pred.min() < 1 or pred.max() > 16)):
        raise ValueError("nuScenes predictions must be a 1-D array of classes 1..16")
    path = Path(folder) / "lidarseg" / split / f"{token}_lidarseg.bin"
    return _atomic_write(path, pred.astype(np.uint8))


def write_semantickitti_predictions(folder: str | Path, scan_id: str, pred: Any) -> Path:
    """Write ``pred`` (classes 0..19) for scan ``"08/000123"`` as raw ids (learning_map_inv)."""
    seq, _, frame = scan_id.partition("/")
    path = Path(folder) / "sequences" / seq / "predictions" / f"{frame}.label"
    return _atomic_write(path, kc.to_raw(pred))


def _progress(items: list, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="scan", disable=len(items) < 20, leave=False)


def _read_predictions(path: Path, dtype: Any, n_points: int, points: str) -> np.ndarray:
    from mv2d_bench.loaders.seg_common import read_label_file

    return read_label_file(path, dtype, n_points, points, "prediction", SubmissionError)


def _check_extra(found: set[Path], expected: set[Path], folder: Path) -> None:
    extra = sorted(found - expected)
    if extra:
        raise SubmissionError(
            f"{extra[0]}: not a scan of the scored split ({len(extra)} such file(s) under "
            f"{folder}); remove it or score the split it belongs to"
        )


def score_nuscenes_folder(
    protocol, folder: str | Path, root: str | None = None, **options
) -> Score:
    from mv2d_bench import loaders

    folder = Path(folder)
    base = folder / "lidarseg"
    present = [d for d in NUSCENES_SPLIT_DIRS if (base / d).is_dir()]
    if len(present) != 1:
        raise SubmissionError(
            f"{base}: expected exactly one of lidarseg/val (v1.0-trainval) or lidarseg/mini_val "
            f"(v1.0-mini) holding <token>_lidarseg.bin files; found {present or 'neither'}"
        )
    split_dir = base / present[0]
    version = options.pop("version", NUSCENES_SPLIT_DIRS[present[0]])
    if version != NUSCENES_SPLIT_DIRS[present[0]]:
        raise SubmissionError(
            f"{split_dir}: a {present[0]} submission is scored against "
            f"{NUSCENES_SPLIT_DIRS[present[0]]}, not version {version}"
        )
    bench = loaders.create("nuscenes-lidarseg", root=root, version=version, **options)
    metric = protocol.metric()
    refs = bench.scans("val")
    expected = set()
    for ref in _progress(refs, "scoring nuScenes-lidarseg"):
        scan = bench.read_scan(ref, cameras=protocol.fov)
        path = split_dir / f"{ref.id}_lidarseg.bin"
        expected.add(path)
        pred = _read_predictions(path, np.uint8, len(scan), ref.points)
        arrays = {"pred": pred, "label": scan.labels}
        if protocol.fov:
            arrays["visible"] = scan.seen
        try:
            metric.update(**arrays)
        except ValueError as exc:
            raise SubmissionError(f"{path}: {exc}") from None
    _check_extra(set(split_dir.glob("*_lidarseg.bin")), expected, split_dir)
    return metric.compute()


def score_semantickitti_folder(
    protocol, folder: str | Path, root: str | None = None, **options
) -> Score:
    from mv2d_bench import loaders

    folder = Path(folder)
    bench = loaders.create("semantickitti", root=root, **options)
    metric = protocol.metric()
    refs = bench.scans("val")
    expected = set()
    for ref in _progress(refs, "scoring SemanticKITTI"):
        seq, _, frame = ref.id.partition("/")
        path = folder / "sequences" / seq / "predictions" / f"{frame}.label"
        expected.add(path)
        scan = bench.read_scan(ref, cameras=protocol.fov)
        raw = _read_predictions(path, np.uint32, len(scan), ref.points)
        pred = kc.map_labels(raw, str(path))
        arrays = {"pred": pred, "label": scan.labels}
        if protocol.fov:
            arrays["visible"] = scan.seen
        metric.update(**arrays)
    found = {p for s in bench.sequences["val"] for p in
             (folder / "sequences" / s / "predictions").glob("*.label")}  # fmt: skip
    if not found and not expected:
        raise SubmissionError(f"{folder}: no sequences/NN/predictions/*.label files")
    _check_extra(found, expected, folder)
    return metric.compute()
