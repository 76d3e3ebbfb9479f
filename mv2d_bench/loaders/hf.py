"""``hf``: a multi-view classification data set stored as a Hugging Face dataset.

``--root`` is a folder written by ``save_to_disk`` (a ``DatasetDict`` or one ``Dataset``; read
with ``datasets.load_from_disk``, memory-mapped), a folder of parquet files (``train.parquet``,
``validation.parquet``, ``test.parquet``, or the Hub's ``data/train-00000-of-00001.parquet``
shards) or one ``.parquet`` file. Nothing is downloaded (``HF_DATASETS_OFFLINE=1`` is set here).

Options (``[benchmark]`` / ``--set benchmark.KEY=...``):

* ``views``: the view columns, in order (default: every column of float sequences, in column
  order); each must hold equal-length numeric sequences without nulls;
* ``label``: the label column (default ``label``): a ``ClassLabel`` (its names are the classes),
  integers, or strings (sorted);
* ``splits``: ``auto`` (default) uses the dataset's own splits when it has ``train`` and
  ``test`` (``validation``/``valid``/``val``/``dev`` and ``testing``/``training`` are understood):
  the run's split is then ``predefined-hf/train-validation-test`` as given, or, without a
  validation split, ``predefined-hf/train-test/val-from-train-70-20/seed-N`` (validation carved
  from train per class). A dataset with only one split, or ``splits=per-class``, is pooled and
  split per class like every other MVC benchmark (``stratified-70-20-10/seed-N``);
* ``dtype``: float64 (default) or float32.

A dataset exported by ``mv2d-bench data export`` carries its export block
(:mod:`mv2d_bench.loaders.hf_format`): its rows are put back in the exported benchmark's order
(``sample_index``), so its own splits are the exported split, index for index, and the split id
says so (``predefined-hf/<the exported split id>``); ``data verify hf`` compares the content
sha256 with the one recorded at export. ``data_sha256`` of an ``hf`` run is that content sha256
(float32 views and labels), the same for the ``save_to_disk`` and the parquet form of one data set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders import hf_format as H
from mv2d_bench.loaders.base import DataCard, DataError
from mv2d_bench.loaders.mvc import MvcBenchmark, MvcData, content_sha256, encode_labels
from mv2d_bench.loaders.splits import GivenSplit, digest_parts

SPLIT_MODES = ("auto", "per-class")


def _offline() -> None:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


class HfDataset(MvcBenchmark):
    name = "hf"
    card = DataCard(
        citation="(the dataset's own: see its DatasetInfo)",
        license="(the dataset's own)",
        url="a local Hugging Face dataset: a save_to_disk folder or parquet files (--root PATH)",
        layout="a folder written by datasets' save_to_disk (dataset_dict.json or state.json), "
        "a folder of train/validation/test parquet files (or data/<split>-*.parquet), or one "
        ".parquet file; one float-sequence column per view and a label column",
    )
    options_doc: ClassVar[dict[str, str]] = {
        "views": "comma-separated view columns (default: every float-sequence column, in order)",
        "label": "the label column (default: label)",
        "splits": "auto (default: the dataset's own train/validation/test when present) or "
        "per-class (pool every split, then the protocol's per-class split)",
        "dtype": "float64 (default) or float32",
    }

    def selected_views(self) -> list[str] | None:
        from mv2d_bench.loaders.mvc import parse_view_list

        return parse_view_list(self.options.get("views"))

    # -- reading the tables -------------------------------------------------------------------
    def _tables(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        """({split name: pyarrow table}, features, export block or None) of the root."""
        _offline()
        root = Path(self.root)
        if root.is_file():
            if root.suffix != ".parquet":
                raise DataError(
                    f"{root}: hf needs a save_to_disk folder, a folder of parquet files or a "
                    ".parquet file; got a {root.suffix or 'suffix-less'} file"
                )
            return self._parquet({_split_of_file(root): [root]})
        if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
            return self._from_disk(root)
        shards: dict[str, list[Path]] = {}
        for folder in (root, root / "data"):
            for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
                shards.setdefault(_split_of_file(path), []).append(path)
            if shards:
                break
        if not shards:
            raise DataError(
                f"{root}: no dataset found; expected {self.card.layout} (found "
                f"{sorted(p.name for p in root.iterdir())[:12]})"
            )
        return self._parquet(shards)

    def _from_disk(self, root: Path):
        import datasets

        try:
            loaded = datasets.load_from_disk(str(root))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{root}: cannot read the dataset saved there ({type(exc).__name__}: {exc}); "
                "expected a complete save_to_disk folder"
            ) from exc
        parts = loaded if isinstance(loaded, datasets.DatasetDict) else {"": loaded}
        first = next(iter(parts.values()))
        tables = {name: ds.data.table for name, ds in parts.items()}
        block = H.block_from_description(first.info.description)
        info = first.info
        self._format = "hf-save_to_disk"
        self._card = {
            "description": info.description.split("\n" + H.BLOCK_PREFIX)[0],
            "citation": info.citation,
            "homepage": info.homepage,
            "license": info.license,
        }
        return tables, first.features, block

    def _parquet(self, shards: dict[str, list[Path]]):
        import datasets
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables, block, feats = {}, None, None
        for name, paths in shards.items():
            parts = []
            for path in paths:
                try:
                    parts.append(pq.read_table(path))
                except (OSError, pa.ArrowException) as exc:
                    raise DataError(
                        f"{path}: cannot read parquet data ({type(exc).__name__}: {exc}); "
                        "expected a complete parquet file"
                    ) from exc
            try:
                tables[name] = pa.concat_tables(parts)
            except pa.ArrowInvalid as exc:
                raise DataError(
                    f"{paths[0].parent}: the {name or 'unnamed'} shards have different columns "
                    f"({exc}); expected one schema"
                ) from exc
            block = block or H.block_from_schema(parts[0].schema.metadata)
            feats = feats or datasets.Dataset(parts[0].slice(0, 0)).features
        self._format, self._card = "hf-parquet", {}
        return tables, feats, block

    # -- into MvcData ---------------------------------------------------------------------------
    def read(self) -> MvcData:
        tables, feats, block = self._tables()
        root = Path(self.root)
        mode = str(self.options.get("splits", "auto"))
        if mode not in SPLIT_MODES:
            raise ValueError(f"hf: option splits: expected auto or per-class, got {mode!r}")
        roles = _roles(tables, root, mode)
        first = next(iter(tables.values()))
        label = str(self.options.get("label", H.LABEL))
        views = self.selected_views() or _float_sequence_columns(first, feats, label)
        if not views:
            raise DataError(
                f"{root}: no view columns; expected columns of float sequences (found "
                f"{_column_kinds(first)}); name them with views=COL1,COL2"
            )
        order = [name for role in H.SPLITS for name, r in roles.items() if r == role]
        order += [name for name in tables if name not in order]  # per-class: every split
        arrays = {v: [] for v in views}
        raw_labels, counts = [], {}
        for name in order:
            table = tables[name]
            for v in views:
                arrays[v].append(_matrix(table, v, root, name))
            raw_labels.append(_column(table, label, root, name))
            counts[name] = table.num_rows
        dims = {v: {a.shape[1] for a in arrays[v]} for v in views}
        bad = {v: sorted(d) for v, d in dims.items() if len(d) > 1}
        if bad:
            raise DataError(f"{root}: view columns with different lengths across splits: {bad}")
        x = [np.concatenate(arrays[v]).astype(self.dtype, copy=False) for v in views]
        labels, class_names = _labels(np.concatenate(raw_labels), feats, label, root)

        rank = None  # row (in split order) -> its position once put back in sample order
        if block is not None and H.INDEX in first.column_names:
            index = np.concatenate([_column(tables[n], H.INDEX, root, n) for n in order])
            if len(np.unique(index)) != len(index):
                raise DataError(
                    f"{root}: column {H.INDEX!r} of an mv2d-bench export repeats values; the "
                    "dataset was edited - drop the column to read it in its stored order"
                )
            by_index = np.argsort(index, kind="stable")
            rank = np.empty_like(by_index)
            rank[by_index] = np.arange(len(index))
            x = [v[by_index] for v in x]
            labels = labels[by_index]
        given = self._given(roles, order, counts, rank, block)
        info: dict[str, Any] = {
            "format": self._format,
            "named": True,
            "splits": counts,
            "split_roles": {n: r for n, r in roles.items() if r},
            "columns": {"views": views, "label": label},
            "class_names": class_names,
            "dataset_card": self._card,
        }
        if block is not None:
            keys = ("benchmark", "split", "content_sha256", "n_samples")
            info["export"] = {k: block.get(k) for k in keys}
            info["export"]["source_data_sha256"] = block.get("data_sha256")
        return MvcData(
            views=x,
            labels=labels,
            view_names=list(views),
            num_classes=len(class_names),
            source=str(root),
            data_sha256=content_sha256(x, labels),
            info=info,
            given_split=given,
        )

    def _given(self, roles, order, counts, rank, block) -> GivenSplit | None:
        if not any(roles.values()):
            return None
        start, positions = 0, {}
        for name in order:
            positions[name] = np.arange(start, start + counts[name])
            start += counts[name]
        if rank is not None:
            positions = {n: np.sort(rank[p]) for n, p in positions.items()}
        by_role = {roles[n]: positions[n] for n in order if roles.get(n)}
        train, test, val = by_role["train"], by_role["test"], by_role.get("validation")
        name = "train-validation-test" if val is not None else "train-test"
        exported = (block or {}).get("split", {})
        if val is not None and exported.get("sha256") == digest_parts(train, val, test):
            name = str(exported["split_id"])  # the exported split, index for index
        return GivenSplit("hf", train, test, val, name=name)

    def verify(self) -> dict[str, Any]:
        report = super().verify()
        summary = report.get("summary") or {}
        export = summary.get("layout", {}).get("export")
        if not (export and export.get("content_sha256")):
            return report
        got = summary["data_sha256"]
        check: dict[str, Any] = {"name": "content sha256"}
        if summary["samples"] != export.get("n_samples"):
            check.update(
                ok=True,
                skipped=True,
                detail=f"{summary['samples']} of the {export.get('n_samples')} exported samples "
                f"(a part of the export); data {got}",
            )
        else:
            check["ok"] = got == export["content_sha256"]
            check["detail"] = got + (
                "" if check["ok"] else f" (exported {export['content_sha256']})"
            )
        report["checks"] = [c for c in report["checks"] if c["name"] != "sha256"] + [check]
        report["ok"] = all(c["ok"] for c in report["checks"])
        return report


# -- columns ----------------------------------------------------------------------------------
def _split_of_file(path: Path) -> str:
    """A parquet file's split: its name up to the first '-' (the Hub's shard names)."""
    return path.stem.split("-")[0]


def _roles(tables: dict[str, Any], root: Path, mode: str) -> dict[str, str | None]:
    """split name -> train/validation/test when the dataset's own splits are used, else None."""
    if mode == "per-class" or len(tables) == 1:
        return {name: None for name in tables}
    roles = {name: H.SPLIT_ALIASES.get(name.lower()) for name in tables}
    unknown = sorted(n for n, r in roles.items() if r is None)
    taken = [r for r in roles.values() if r]
    if unknown or len(set(taken)) != len(taken) or not {"train", "test"} <= set(taken):
        raise DataError(
            f"{root}: splits {sorted(tables)}; expected train and test (and optionally "
            "validation) to use them as given - or set benchmark.splits=per-class to pool them "
            "and split per class"
        )
    return roles


def _float_sequence_columns(table: Any, feats: Any, label: str) -> list[str]:
    import pyarrow as pa

    out = []
    for name in table.column_names:
        if name in (label, H.INDEX):
            continue
        t = table.schema.field(name).type
        if _is_list(t) and pa.types.is_floating(t.value_type):
            out.append(name)
    return out


def _is_list(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _column_kinds(table: Any) -> dict[str, str]:
    return {f.name: str(f.type) for f in table.schema}


def _matrix(table: Any, column: str, root: Path, split: str) -> np.ndarray:
    """A column of equal-length numeric sequences as a (rows, d) array, exactly."""
    import pyarrow as pa

    where = f"{root}: split {split!r}: column {column!r}" if split else f"{root}: column {column!r}"
    if column not in table.column_names:
        raise DataError(f"{where} not found; the columns are {_column_kinds(table)}")
    arr = table.column(column).combine_chunks()
    t = arr.type
    if not _is_list(t) or not (
        pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)
    ):
        raise DataError(f"{where} is {t}; expected a sequence of numbers per row (a view)")
    if arr.null_count:
        raise DataError(f"{where} has {arr.null_count} null rows; expected a sequence in every row")
    n = len(arr)
    if pa.types.is_fixed_size_list(t):
        d = t.list_size
        values = arr.flatten()
    else:
        offsets = arr.offsets.to_numpy()
        lengths = np.diff(offsets)
        if n and (lengths != lengths[0]).any():
            raise DataError(
                f"{where} has rows of lengths {sorted(set(lengths.tolist()))[:6]}; expected one "
                "length (the view's dimension)"
            )
        d = int(lengths[0]) if n else 0
        values = arr.flatten()
    if values.null_count:
        raise DataError(f"{where} has {values.null_count} null values; expected numbers")
    out = values.to_numpy(zero_copy_only=False).reshape(n, d)
    if not np.all(np.isfinite(out)):
        bad = np.argwhere(~np.isfinite(out))[0]
        raise DataError(f"{where} has NaN/inf values (first at row {bad[0]}, feature {bad[1]})")
    return out


def _column(table: Any, column: str, root: Path, split: str) -> np.ndarray:
    where = f"{root}: split {split!r}" if split else f"{root}"
    if column not in table.column_names:
        raise DataError(
            f"{where}: no column {column!r}; the columns are {_column_kinds(table)} (set "
            "benchmark.label=COLUMN)"
        )
    arr = table.column(column).combine_chunks()
    if arr.null_count:
        raise DataError(f"{where}: column {column!r} has {arr.null_count} nulls; expected values")
    return arr.to_numpy(zero_copy_only=False)


def _labels(raw: np.ndarray, feats: Any, label: str, root: Path) -> tuple[np.ndarray, list[str]]:
    import datasets

    feature = feats.get(label) if feats is not None else None
    if isinstance(feature, datasets.ClassLabel):
        labels = raw.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= feature.num_classes):
            raise DataError(
                f"{root}: column {label!r} holds values outside the ClassLabel's "
                f"0..{feature.num_classes - 1}"
            )
        return labels, list(feature.names)
    if raw.dtype.kind in "OUS":
        values, labels = np.unique(raw.astype(str), return_inverse=True)
        return labels.astype(np.int64).ravel(), [str(v) for v in values]
    labels, values = encode_labels(raw, root, label)
    return labels, [format(v, "g") if isinstance(v, float) else str(v) for v in values.tolist()]
