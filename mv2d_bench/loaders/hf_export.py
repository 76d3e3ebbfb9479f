"""``mv2d-bench data export``: a multi-view classification benchmark as a Hugging Face dataset.

``export(benchmark, out, "hf")`` writes a ``datasets.DatasetDict`` with ``save_to_disk``;
``"parquet"`` writes ``train.parquet``, ``validation.parquet`` and ``test.parquet``. Layout and
metadata: :mod:`mv2d_bench.loaders.hf_format`. The splits are the protocol's split of the data
(``data.make_split(split_seed)``: the per-class 70/20/10 split, MvNNcor's with
``procedure="mvnncor"``, or the split the data comes with).
Views are written as float32 (what every run trains on), so reading the export back gives the
same float32 values bit for bit and the same content sha256.

Nothing half-written is left at ``out``: everything is written into a hidden sibling folder
``.<out>.partial-<pid>`` and renamed to ``out`` at the end (files and folder fsynced first). An
interrupted export removes its partial folder; one killed outright leaves it behind, and the next
export to the same ``out`` removes it when its process is gone. ``out`` must not exist or be an
empty folder.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mv2d_bench.loaders import hf_format as H
from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.mvc import MvcBenchmark, MvcData, content_sha256, float32_rows
from mv2d_bench.loaders.splits import PROTOCOL_FRACTIONS, Split

FORMATS = ("hf", "parquet")
CHUNK_BYTES = 64 << 20
"""Rows are converted and written in chunks of about this many bytes of float32 features."""


class ExportError(DataError):
    """The export cannot start (bad output folder, unsupported benchmark, clashing names)."""


def class_names(data: MvcData) -> list[str]:
    """Names of the classes 0..C-1: the data's own when it has them, else the original label
    values (a .mat file's 1..C), else the indices."""
    for key in ("class_names", "classes"):
        names = data.info.get(key)
        if isinstance(names, list) and len(names) == data.num_classes:
            return [str(n) for n in names]
    values = data.info.get("label_values")
    if isinstance(values, list) and len(values) == data.num_classes:
        return [format(v, "g") if isinstance(v, float) else str(v) for v in values]
    return [str(i) for i in range(data.num_classes)]


def check_output(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: -o exists and is a file; expected a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(
            f"{out}: -o exists and is not empty; expected a new or empty folder (remove it or "
            "choose another)"
        )


def _remove_stale(out: Path) -> None:
    """Partial folders of earlier exports to ``out`` whose process is gone (killed outright)."""
    for path in out.parent.glob(f".{out.name}.partial-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export_block(bench: MvcBenchmark, data: MvcData, split: Split, digest: str) -> dict[str, Any]:
    from mv2d_bench import __version__

    card = bench.card
    counts = {H.SPLIT_OF_PART[p]: len(getattr(split, p)) for p in ("train", "val", "test")}
    return {
        "format": H.FORMAT,
        "mv2d_bench_version": __version__,
        "benchmark": bench.name,
        "benchmark_version": int(getattr(bench, "version", 1)),
        "views": [
            {"name": n, "dim": d} for n, d in zip(data.view_names, data.view_dims, strict=True)
        ],
        "label": H.LABEL,
        "index": H.INDEX,
        "class_names": class_names(data),
        "split": {
            "split_id": split.split_id,
            "sha256": split.sha256,
            "seed": split.seed,
            "fractions": list(split.fractions),
            "labels_sha256": split.labels_sha256,
            "counts": counts,
        },
        "n_samples": data.n_samples,
        "data_sha256": data.data_sha256,
        "content_sha256": digest,
        "card": {
            "citation": card.citation if card else "",
            "license": card.license if card else "",
            "url": card.url if card else "",
            "layout": card.layout if card else "",
            "notes": card.notes if card else "",
            "checksums": dict(card.checksums) if card else {},
        },
    }


def _dims(data: MvcData) -> dict[str, int]:
    return dict(zip(data.view_names, data.view_dims, strict=True))


def _chunks(data: MvcData, index: np.ndarray):
    """(row indices) chunks of about CHUNK_BYTES of float32 features."""
    per_row = 4 * max(1, sum(data.view_dims))
    step = max(1, CHUNK_BYTES // per_row)
    for start in range(0, len(index), step):
        yield index[start : start + step]


def _table(data: MvcData, rows: np.ndarray, schema):
    import pyarrow as pa

    cols = []
    for x in data.views:
        block = float32_rows(x, rows)
        cols.append(pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), block.shape[1]))
    cols.append(pa.array(data.labels[rows].astype(np.int64)))
    cols.append(pa.array(rows.astype(np.int64)))
    return pa.Table.from_arrays(cols, schema=schema)


def export(
    bench: MvcBenchmark,
    out: str | os.PathLike,
    fmt: str = "hf",
    split_seed: int = 0,
    fractions=PROTOCOL_FRACTIONS,
    progress: bool = True,
    procedure: str = "stratified",
) -> dict[str, Any]:
    """Write ``bench``'s data to ``out`` (see the module doc); returns the export block."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if getattr(bench, "family", "") != "mvc":
        raise ExportError(
            f"{bench.name}: a {bench.family or '?'} benchmark; only multi-view classification "
            "benchmarks (family mvc) can be exported"
        )
    out = Path(out).expanduser().absolute()
    check_output(out)
    data = bench.load()
    clash = [n for n in data.view_names if n in (H.LABEL, H.INDEX)]
    if clash:
        raise ExportError(
            f"{data.source}: view name(s) {clash} clash with the columns {H.LABEL!r} and "
            f"{H.INDEX!r}; select or rename the views"
        )
    split = data.make_split(split_seed, fractions, procedure)
    digest = content_sha256(data.views, data.labels)
    block = export_block(bench, data, split, digest)
    feats = H.features(
        dict(zip(data.view_names, data.view_dims, strict=True)), block["class_names"]
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    from tqdm import tqdm

    bar = tqdm(
        total=data.n_samples,
        desc=f"export {bench.name}",
        unit="rows",
        disable=not progress,
        file=sys.stderr,
        mininterval=0.5,
        leave=False,
    )
    try:
        parts = {H.SPLIT_OF_PART[p]: getattr(split, p) for p in ("train", "val", "test")}
        if fmt == "parquet":
            _write_parquet(data, parts, feats, block, partial, bar)
        else:
            _write_hf(bench, data, parts, feats, block, partial, staging, bar)
        _fsync_tree(partial)
        if out.is_dir():  # an empty folder: rename(2) replaces it
            check_output(out)
        os.replace(partial, out)
        _fsync_dir(out.parent)
    finally:
        bar.close()
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
    return block


def _write_parquet(data, parts, feats, block, folder: Path, bar) -> None:
    import json

    import pyarrow.parquet as pq

    schema = feats.arrow_schema
    meta = dict(schema.metadata or {})
    meta[H.PARQUET_KEY] = json.dumps(block, sort_keys=True).encode()
    schema = schema.with_metadata(meta)
    folder.mkdir()
    for name, index in parts.items():
        with pq.ParquetWriter(folder / f"{name}.parquet", schema) as writer:
            for rows in _chunks(data, index):
                writer.write_table(_table(data, rows, schema))
                bar.update(len(rows))


def _write_hf(bench, data, parts, feats, block, folder: Path, staging: Path, bar) -> None:
    import datasets
    import pyarrow as pa

    info = datasets.DatasetInfo(
        description=H.description(bench.name, block),
        citation=block["card"]["citation"],
        homepage=block["card"]["url"],
        license=block["card"]["license"],
        features=feats,
        dataset_name=bench.name,
    )
    staging.mkdir()
    schema = feats.arrow_schema
    splits = {}
    for name, index in parts.items():
        path = staging / f"{name}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for rows in _chunks(data, index):
                writer.write_table(_table(data, rows, schema))
                bar.update(len(rows))
        splits[name] = datasets.Dataset.from_file(str(path), info=info.copy(), split=name)
    bar.set_description(f"export {bench.name}: save_to_disk")
    silence = datasets.is_progress_bar_enabled()  # one bar: ours
    if silence:
        datasets.disable_progress_bar()
    try:
        datasets.DatasetDict(splits).save_to_disk(str(folder))
    finally:
        if silence:
            datasets.enable_progress_bar()
