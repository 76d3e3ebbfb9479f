"""Read any multi-view ``.mat`` file: MATLAB v5 (scipy) or v7.3 (HDF5, h5py).

Which variables hold the views and labels is decided in :mod:`mv2d_bench.loaders.mat_layouts`
(a cell, per-view variables ``x1, x2, ...``, or a predefined train/test split). The common
published layout is a cell ``X`` of per-view matrices plus a label vector:

* the cell may be ``1 x V`` or ``V x 1``; it may also be named ``data`` or ``fea``;
* a view may be stored samples x features or features x samples: the orientation is decided by
  which dimension equals the number of labels, and a view where both do (a square matrix) is
  refused unless ``orientation`` (samples-first / features-first) says how to read such views;
* a view may be dense or sparse (Reuters); sparse views stay ``scipy.sparse`` (CSR, rows =
  samples) until batching;
* labels live under ``Y``, ``y`` or ``gt`` (``N x 1`` or ``1 x N``, any integer values: 0- or
  1-based or arbitrary); they are mapped to ``0..C-1`` in sorted order of the original values;
* extra keys (``lenSmp``, ``feanames`` ...) are ignored, never required.

MATLAB v7.3 files are HDF5 files with a 512-byte header block. Every MATLAB array is stored
transposed (column-major), a cell is a dataset of object references into ``#refs#``, and a sparse
matrix is a group holding ``data``, ``ir`` (row indices) and ``jc`` (column pointers) with the row
count in the attribute ``MATLAB_sparse``. Shapes reported here are MATLAB's (rows x columns).

Every problem raises :class:`~mv2d_bench.loaders.base.DataError` naming the file, the field
(MATLAB notation, ``X{3}`` is the third view) and what was expected.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from mv2d_bench.loaders.base import DataError, sha256_file
from mv2d_bench.loaders.mat_layouts import detect_layout
from mv2d_bench.loaders.mvc import MvcBenchmark, MvcData, encode_labels, validate_views
from mv2d_bench.loaders.splits import GivenSplit

ORIENTATIONS = ("auto", "samples-first", "features-first")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# -- what kind of file is it -------------------------------------------------------------------
def mat_format(path: str | Path) -> str:
    """``"mat-v5"``, ``"mat-v7.3"`` or ``"hdf5"`` (a plain HDF5 file); DataError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not a file; expected a MATLAB .mat file")
    with open(path, "rb") as f:
        head = f.read(128)
        f.seek(512)
        at512 = f.read(8)
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if len(head) < 128:
        raise DataError(
            f"{path}: {len(head)} bytes; expected a MATLAB .mat file (a 128-byte header at "
            "least) - the file is empty or truncated"
        )
    version, endian = head[124:126], head[126:128]
    if endian in (b"IM", b"MI"):
        major = version[1] if endian == b"IM" else version[0]
        if major == 1:
            return "mat-v5"
        if major == 2:
            if at512 != HDF5_SIGNATURE:
                raise DataError(
                    f"{path}: MATLAB v7.3 header but no HDF5 data at byte 512; the file is "
                    "truncated or corrupt"
                )
            return "mat-v7.3"
    text = head[:116].split(b"\x00")[0].decode("latin-1", "replace").strip()
    raise DataError(
        f"{path}: not a MATLAB v5/v7.3 .mat file (header {text[:40]!r}); expected the "
        "'MATLAB 5.0 MAT-file' header with version/endian bytes at 124-128, or an HDF5 file"
    )


# -- MATLAB v5 through scipy ---------------------------------------------------------------------
# What scipy's v5 reader raises on damaged bytes (TypeError "Expecting matrix here",
# IndexError, KeyError ... from inside its parser), besides its own MatReadError.
V5_READ_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    zlib.error,
    struct.error,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    NotImplementedError,
    OverflowError,
)


def _load_v5(path: Path) -> dict[str, Any]:
    import scipy.io
    from scipy.io.matlab import MatReadError

    from mv2d_bench.loaders.matv5_check import check_v5_structure

    check_v5_structure(path)  # damaged tags crash scipy's reader instead of raising
    try:
        return {
            k: v
            for k, v in scipy.io.loadmat(path, mat_dtype=False).items()
            if not k.startswith("__")
        }
    except (MatReadError, *V5_READ_ERRORS) as exc:
        raise DataError(
            f"{path}: cannot read MATLAB v5 data ({type(exc).__name__}: {exc}); the file is "
            "truncated or corrupt - expected a complete .mat file"
        ) from exc


# -- MATLAB v7.3 / HDF5 through h5py -------------------------------------------------------------
def _attr_str(obj: Any, name: str) -> str | None:
    value = obj.attrs.get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _h5_value(f: Any, obj: Any, matlab: bool) -> Any:
    """One HDF5 object as numpy / scipy.sparse / object array (cells), in MATLAB shape."""
    import h5py

    if isinstance(obj, h5py.Group):
        if "MATLAB_sparse" in obj.attrs:
            n_rows = int(obj.attrs["MATLAB_sparse"])
            jc = np.asarray(obj["jc"][()], dtype=np.int64)
            ir = np.asarray(obj["ir"][()], dtype=np.int64) if "ir" in obj else np.zeros(0, int)
            data = obj["data"][()] if "data" in obj else np.zeros(0)
            if data.dtype.names:  # complex
                raise DataError(f"{f.filename}: {obj.name}: complex sparse data is not supported")
            return sp.csc_matrix((data, ir, jc), shape=(n_rows, len(jc) - 1))
        return {k: _h5_value(f, obj[k], matlab) for k in obj}  # a struct
    cls = _attr_str(obj, "MATLAB_class")
    if "MATLAB_empty" in obj.attrs and int(np.asarray(obj.attrs["MATLAB_empty"])) == 1:
        return np.zeros((0, 0))
    if obj.dtype == h5py.ref_dtype or cls == "cell":
        refs = obj[()]
        out = np.empty(refs.shape, dtype=object)
        for idx in np.ndindex(refs.shape):
            out[idx] = _h5_value(f, f[refs[idx]], matlab)
        return out.T if matlab else out
    value = obj[()]
    if cls == "char":
        chars = np.asarray(value, dtype=np.uint16).T
        return np.array(["".join(map(chr, row)) for row in np.atleast_2d(chars)])
    if value.dtype.names:  # MATLAB complex numbers
        raise DataError(f"{f.filename}: {obj.name}: complex data is not supported")
    value = np.asarray(value)
    return value.T if matlab and value.ndim >= 2 else value


# What h5py raises on damaged bytes: OSError / KeyError / ValueError, RuntimeError for errors of
# the HDF5 library ("bad version number for datatype message"), TypeError / IndexError from
# attributes whose decoded values are not what MATLAB writes.
H5_READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError)


def _load_h5(path: Path, matlab: bool, keys: list[str] | None = None) -> dict[str, Any]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = [k for k in f if not k.startswith("#")]
            out = {}
            for k in names:
                if keys is not None and k not in keys:
                    out[k] = None  # listed, not read
                    continue
                out[k] = _h5_value(f, f[k], matlab)
            return out
    except DataError:
        raise
    except (*H5_READ_ERRORS,) as exc:
        raise DataError(
            f"{path}: cannot read {'MATLAB v7.3' if matlab else 'HDF5'} data "
            f"({type(exc).__name__}: {exc}); the file is truncated or corrupt - expected a "
            "complete HDF5 file"
        ) from exc


def load_variables(path: str | Path, keys: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """(format, {name: value}) for every variable in the file, values in MATLAB shape."""
    path = Path(path)
    fmt = mat_format(path)
    if fmt == "mat-v5":
        return fmt, _load_v5(path)
    return fmt, _load_h5(path, matlab=fmt == "mat-v7.3", keys=keys)


def describe_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"kind": "not read"}
    if sp.issparse(value):
        return {"kind": "sparse", "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {"kind": "struct", "fields": sorted(value)}
    arr = np.asarray(value)
    kind = "cell" if arr.dtype == object else ("char" if arr.dtype.kind == "U" else "numeric")
    return {"kind": kind, "shape": list(arr.shape), "dtype": str(arr.dtype)}


# -- from variables to views and labels ----------------------------------------------------------
def _cell_views(value: Any, key: str, path: Path) -> tuple[list[Any], list[int]]:
    arr = value if sp.issparse(value) else np.asarray(value)
    if sp.issparse(arr) or arr.dtype != object:
        raise DataError(
            f"{path}: field {key!r} is a {describe_value(value)['kind']} array of shape "
            f"{list(np.shape(value))}; expected a cell array of per-view matrices (1xV or Vx1)"
        )
    if arr.ndim != 2 or min(arr.shape) != 1:
        raise DataError(
            f"{path}: field {key!r} is a cell of shape {list(arr.shape)}; expected 1xV or Vx1"
        )
    return list(arr.ravel()), list(arr.shape)


def _labels_vector(value: Any, key: str, path: Path) -> np.ndarray:
    if sp.issparse(value):
        value = value.toarray()
    arr = np.asarray(value)
    if arr.dtype == object:  # a cell of label vectors (one per view): they must agree
        parts = [np.asarray(v).ravel() for v in arr.ravel()]
        if not parts or any(p.shape != parts[0].shape or np.any(p != parts[0]) for p in parts):
            raise DataError(
                f"{path}: field {key!r} is a cell of label vectors that differ; expected one "
                "label vector"
            )
        arr = parts[0]
    if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) != 1) or arr.size == 0:
        raise DataError(
            f"{path}: field {key!r} has shape {list(arr.shape)}; expected a label vector "
            "(N x 1 or 1 x N) of class indices"
        )
    return arr.ravel()


def orient_view(
    x: Any, n: int, name: str, path: Path, orientation: str = "auto"
) -> tuple[Any, str]:
    """Return ``x`` as samples x features and how it was stored (in MATLAB terms).

    The dimension equal to the label count ``n`` is the samples; ``orientation`` decides only
    for a view where both dimensions equal ``n``."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    if not sp.issparse(x):
        x = np.asarray(x)
        if x.dtype == object or x.dtype.kind not in "biuf":
            raise DataError(
                f"{path}: field {name} holds {describe_value(x)['kind']} data of dtype "
                f"{x.dtype}; expected a numeric matrix"
            )
        if x.ndim == 1:
            x = x[:, None] if x.shape[0] == n else x[None, :]
    if x.ndim != 2:
        raise DataError(f"{path}: field {name} has shape {list(x.shape)}; expected a 2-d matrix")
    rows, cols = x.shape
    if rows == n and cols != n:
        stored = "samples x features"
    elif cols == n and rows != n:
        x, stored = x.T, "features x samples"
    elif rows == n and cols == n:
        if orientation == "samples-first":
            stored = "samples x features"
        elif orientation == "features-first":
            x, stored = x.T, "features x samples"
        else:
            raise DataError(
                f"{path}: field {name} is {rows} x {cols} and there are {n} labels, so it is "
                "ambiguous whether rows are samples; pass orientation='samples-first' or "
                "'features-first'"
            )
    else:
        raise DataError(
            f"{path}: field {name} is {rows} x {cols}; expected one dimension to equal the "
            f"number of labels ({n}) - views and labels do not match"
        )
    return x, stored


def read_multiview_mat(
    path: str | Path,
    *,
    views_key: str | None = None,
    labels_key: str | None = None,
    orientation: str = "auto",
    dtype: Any = np.float64,
    with_sha256: bool = True,
) -> MvcData:
    """Read a multi-view ``.mat`` (v5 or v7.3) into :class:`MvcData` (views named view1..viewV).

    Any layout of :mod:`mv2d_bench.loaders.mat_layouts`; a predefined train/test split becomes
    the data's :attr:`~mv2d_bench.loaders.mvc.MvcData.given_split` (training samples first)."""
    path = Path(path)
    fmt, variables = load_variables(path)
    layout = detect_layout(variables, path, views_key, labels_key)
    raw_labels = {}
    for part, key in layout.labels.items():
        raw_labels[part] = _labels_vector(variables[key], key, path)
        encode_labels(raw_labels[part], path, key)  # each part's values checked, naming it
    lkey = "/".join(layout.labels[p] for p in layout.parts)
    labels, values = encode_labels(
        np.concatenate([raw_labels[p] for p in layout.parts]), path, lkey
    )
    counts = {p: len(raw_labels[p]) for p in layout.parts}
    raw_views, fields, cell_shape = {}, {}, None
    for part in layout.parts:
        source = layout.views[part]
        if isinstance(source, str):
            raw_views[part], shape = _cell_views(variables[source], source, path)
            fields[part] = [f"{source}{{{i + 1}}}" for i in range(len(raw_views[part]))]
            cell_shape = cell_shape or shape
        else:
            raw_views[part], fields[part] = [variables[k] for k in source], list(source)
    n_views = {p: len(raw_views[p]) for p in layout.parts}
    if len(set(n_views.values())) > 1:
        raise DataError(
            f"{path}: {layout.views['train']} holds {n_views['train']} views and "
            f"{layout.views['test']} {n_views['test']}; expected the same views in both parts"
        )
    views, stored, sparse = [], [], []
    for i in range(n_views[layout.parts[0]]):
        pieces, how = [], []
        for part in layout.parts:
            x, h = orient_view(raw_views[part][i], counts[part], fields[part][i], path, orientation)
            pieces.append(x)
            how.append(h)
        if len({x.shape[1] for x in pieces}) > 1:
            view = fields["train"][i].replace("_train", "")
            raise DataError(
                f"{path}: {view} has {pieces[0].shape[1]} features in {fields['train'][i]} and "
                f"{pieces[1].shape[1]} in {fields['test'][i]}; expected the same features in "
                "both parts"
            )
        if any(sp.issparse(x) for x in pieces):
            x = sp.csr_matrix(sp.vstack([sp.csr_matrix(x) for x in pieces]), dtype=dtype)
        else:
            x = np.ascontiguousarray(np.concatenate(pieces), dtype=dtype)
        views.append(x)
        stored.append(how[0] if len(set(how)) == 1 else ", ".join(how))
        sparse.append(bool(sp.issparse(x)))
    names = [" + ".join(fields[p][i] for p in layout.parts) for i in range(len(views))]
    validate_views(views, labels, path, names)
    given = None
    if layout.split:
        n_train = counts["train"]
        given = GivenSplit("mat", np.arange(n_train), np.arange(n_train, labels.shape[0]))
    info = {
        "format": fmt,
        "layout": layout.describe(),
        "views_key": "/".join(layout.views[p] for p in layout.parts)
        if layout.kind == "cell"
        else None,
        "labels_key": lkey,
        "view_fields": names,
        "cell_shape": cell_shape,
        "split": counts if layout.split else None,
        "stored": stored,
        "sparse": sparse,
        "label_values": values.tolist() if values.size <= 1000 else None,
        "ignored_keys": sorted(k for k in variables if k not in layout.used),
    }
    return MvcData(
        views=views,
        labels=labels,
        view_names=[f"view{i + 1}" for i in range(len(views))],
        num_classes=int(values.size),
        source=str(path),
        data_sha256=sha256_file(path) if with_sha256 else None,
        info=info,
        given_split=given,
    )


MAT_OPTIONS = {
    "orientation": "auto (default: rows are samples when a view's row count equals the number "
    "of labels), samples-first or features-first",
    "views_key": "the cell of views (default: detected - a cell X, data or fea; per-view "
    "variables x1.., X1.. or view_*; or a predefined split x1_train/x1_test.. or X_train/X_test)",
    "labels_key": "the label vector (default: the first of Y, y, gt; gt_train/gt_test, "
    "Y_train/Y_test or y_train/y_test with a predefined split)",
}


class MatBenchmark(MvcBenchmark):
    """A benchmark published as one multi-view ``.mat`` file (``--root`` is the file or a folder
    holding it under one of :attr:`file_names`)."""

    file_names: ClassVar[tuple[str, ...]] = ()
    options_doc: ClassVar[dict[str, str]] = {**MvcBenchmark.options_doc, **MAT_OPTIONS}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.file_names and "root_candidates" not in cls.__dict__:
            cls.root_candidates = (*cls.file_names, *(f"multiview/{n}" for n in cls.file_names))
        if cls.file_names and "root_subdir" not in cls.__dict__:
            cls.root_subdir = cls.file_names[0]

    def mat_path(self) -> Path:
        root = Path(self.root)
        if root.is_file():
            return root
        for name in self.file_names:
            if (root / name).is_file():
                return root / name
        raise DataError(
            f"{root}: no {self.name} file found; expected one of {list(self.file_names)} in "
            "this folder, or --root pointing at the .mat file itself"
        )

    def read(self) -> MvcData:
        path = self.mat_path()
        data = read_multiview_mat(
            path,
            views_key=self.options.get("views_key"),
            labels_key=self.options.get("labels_key"),
            orientation=self.options.get("orientation", "auto"),
            dtype=self.dtype,
            with_sha256=False,
        )
        data.data_sha256 = self.record_file(path)
        return data
