"""The generic multi-view .mat reader: every published layout and every bad input.

Files are written here in the layouts found in the wild: MATLAB v5 through scipy.io.savemat,
MATLAB v7.3 written the way MATLAB writes it (a 512-byte MAT header block before the HDF5 data,
arrays stored transposed, cells as object references into ``#refs#``, sparse matrices as
``data``/``ir``/``jc`` groups).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
import scipy.sparse as sp

from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.matfile import mat_format, read_multiview_mat


# -- writers -------------------------------------------------------------------------------------
def cell(items, shape=None):
    out = np.empty(shape or (1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out.flat[i] = item
    return out


def _matlab_class(x) -> bytes:
    if sp.issparse(x):
        return b"double"
    return {"f": b"double", "u": b"uint8", "i": b"int32", "b": b"logical"}[np.asarray(x).dtype.kind]


def _write_h5_value(f, group, name, value):
    """One MATLAB variable into HDF5 the way MATLAB v7.3 stores it."""
    import h5py

    if isinstance(value, np.ndarray) and value.dtype == object:  # a cell
        refs_group = f.require_group("#refs#")
        refs = np.empty(value.shape[::-1], dtype=h5py.ref_dtype)  # stored transposed
        for idx in np.ndindex(value.shape):
            key = f"{name}_{'_'.join(map(str, idx))}"
            _write_h5_value(f, refs_group, key, value[idx])
            refs[idx[::-1]] = refs_group[key].ref
        ds = group.create_dataset(name, data=refs)
        ds.attrs["MATLAB_class"] = np.bytes_(b"cell")
        return
    if sp.issparse(value):
        csc = sp.csc_matrix(value)
        g = group.create_group(name)
        g.create_dataset("data", data=csc.data)
        g.create_dataset("ir", data=csc.indices.astype(np.uint64))
        g.create_dataset("jc", data=csc.indptr.astype(np.uint64))
        g.attrs["MATLAB_class"] = np.bytes_(b"double")
        g.attrs["MATLAB_sparse"] = np.uint64(csc.shape[0])
        return
    arr = np.atleast_2d(np.asarray(value))
    ds = group.create_dataset(name, data=arr.T)  # column-major: HDF5 sees the transpose
    ds.attrs["MATLAB_class"] = np.bytes_(_matlab_class(arr))


def write_v73(path, variables):
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            _write_h5_value(f, f, name, value)
    text = (
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
        b"HDF5 schema 1.00 ."
    )
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as f:
        f.write(header)


def make_views(n=30, dims=(5, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, d)) for d in dims], np.repeat(np.arange(3), n // 3) + 1


# -- layouts -------------------------------------------------------------------------------------
def test_v5_row_cell_samples_first(tmp_path):
    views, y = make_views()
    path = tmp_path / "a.mat"
    sio.savemat(path, {"X": cell(views), "Y": y[:, None], "lenSmp": [[10, 10, 10]]})
    data = read_multiview_mat(path)
    assert mat_format(path) == "mat-v5"
    assert data.view_dims == [5, 3, 4] and data.n_samples == 30 and data.num_classes == 3
    for got, want in zip(data.views, views, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(data.labels, y - 1)
    assert data.info["cell_shape"] == [1, 3] and data.info["label_values"] == [1, 2, 3]
    assert data.info["ignored_keys"] == ["lenSmp"]


def test_v5_column_cell_transposed_views_and_gt_labels(tmp_path):
    views, y = make_views()
    path = tmp_path / "b.mat"
    stored = [views[0].T, views[1], views[2].T]  # mixed: two stored features x samples
    sio.savemat(path, {"X": cell(stored, (3, 1)), "gt": y[None, :] - 1})
    data = read_multiview_mat(path)
    assert data.info["cell_shape"] == [3, 1] and data.info["labels_key"] == "gt"
    assert data.info["stored"] == ["features x samples", "samples x features", "features x samples"]
    for got, want in zip(data.views, views, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(data.labels, y - 1)


def test_arbitrary_label_values_map_to_sorted_indices(tmp_path):
    views, _ = make_views(n=6)
    path = tmp_path / "c.mat"
    raw = np.array([10, 3, 7, 3, 10, 7])
    sio.savemat(path, {"X": cell(views), "y": raw})
    data = read_multiview_mat(path)
    np.testing.assert_array_equal(data.labels, [2, 0, 1, 0, 2, 1])
    assert data.info["label_values"] == [3, 7, 10] and data.labels.dtype == np.int64


def test_sparse_views_stay_sparse(tmp_path):
    rng = np.random.default_rng(1)
    dense = [rng.random((40, d)) * (rng.random((40, d)) < 0.1) for d in (50, 70)]
    path = tmp_path / "reuters_like.mat"
    sio.savemat(
        path,
        {"X": cell([sp.csc_matrix(dense[0]), sp.csc_matrix(dense[1]).T]), "Y": np.arange(40) % 4},
    )
    data = read_multiview_mat(path)
    assert all(sp.issparse(x) and x.format == "csr" for x in data.views)
    assert data.info["sparse"] == [True, True]
    np.testing.assert_array_equal(data.views[0].toarray(), dense[0])
    np.testing.assert_array_equal(data.views[1].toarray(), dense[1])


def test_v73_written_like_matlab(tmp_path):
    views, y = make_views(n=24, dims=(6, 2, 9))
    sparse_view = sp.random(24, 11, density=0.2, random_state=4, format="csc")
    path = tmp_path / "v73.mat"
    write_v73(
        path,
        {"X": cell([views[0], views[1].T, sparse_view, views[2]]), "Y": y[:, None].astype(float)},
    )
    assert mat_format(path) == "mat-v7.3"
    data = read_multiview_mat(path)
    assert data.view_dims == [6, 2, 11, 9]
    assert data.info["stored"][1] == "features x samples"
    np.testing.assert_array_equal(data.views[0], views[0])
    np.testing.assert_array_equal(data.views[1], views[1])
    assert sp.issparse(data.views[2])
    np.testing.assert_array_equal(data.views[2].toarray(), sparse_view.toarray())
    np.testing.assert_array_equal(data.views[3], views[2])
    np.testing.assert_array_equal(data.labels, y - 1)


def test_v73_column_cell(tmp_path):
    views, y = make_views(n=12, dims=(3, 4))
    path = tmp_path / "v73col.mat"
    write_v73(path, {"X": cell(views, (2, 1)), "y": y[None, :]})
    data = read_multiview_mat(path)
    assert data.info["cell_shape"] == [2, 1] and data.view_dims == [3, 4]
    np.testing.assert_array_equal(data.views[1], views[1])


def test_square_view_is_refused_unless_orientation_given(tmp_path):
    rng = np.random.default_rng(0)
    square = rng.normal(size=(8, 8))
    path = tmp_path / "sq.mat"
    sio.savemat(path, {"X": cell([square, rng.normal(size=(8, 3))]), "Y": np.arange(8) % 2})
    with pytest.raises(DataError, match=r"X\{1\} is 8 x 8 .*ambiguous"):
        read_multiview_mat(path)
    data = read_multiview_mat(path, orientation="features-first")
    np.testing.assert_array_equal(data.views[0], square.T)
    assert data.info["stored"] == ["features x samples", "samples x features"]  # 8x3: by labels
    data = read_multiview_mat(path, orientation="samples-first")
    np.testing.assert_array_equal(data.views[0], square)


def test_sha256_of_the_file(tmp_path):
    import hashlib

    views, y = make_views()
    path = tmp_path / "h.mat"
    sio.savemat(path, {"X": cell(views), "Y": y})
    assert read_multiview_mat(path).data_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# -- bad input -----------------------------------------------------------------------------------
def _good(tmp_path, **extra):
    views, y = make_views()
    path = tmp_path / "good.mat"
    sio.savemat(path, {"X": cell(views), "Y": y, **extra})
    return path


def test_truncated_v5(tmp_path):
    path = _good(tmp_path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.mat"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.mat: cannot read MATLAB v5 data .*truncated"):
        read_multiview_mat(cut)


def test_truncated_v73(tmp_path):
    views, y = make_views()
    path = tmp_path / "full73.mat"
    write_v73(path, {"X": cell(views), "Y": y})
    raw = path.read_bytes()
    cut = tmp_path / "cut73.mat"
    cut.write_bytes(raw[: len(raw) - 2000])
    with pytest.raises(DataError, match=r"cut73\.mat: cannot read MATLAB v7\.3 data"):
        read_multiview_mat(cut)
    head_only = tmp_path / "head73.mat"
    head_only.write_bytes(raw[:300])
    with pytest.raises(DataError, match=r"head73\.mat: MATLAB v7\.3 header but no HDF5 data"):
        read_multiview_mat(head_only)


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b"", r"0 bytes; expected a MATLAB \.mat file"),
        (b"x,y\n1,2\n" * 40, r"not a MATLAB v5/v7\.3 \.mat file \(header 'x,y"),
    ],
)
def test_not_a_mat_file(tmp_path, content, pattern):
    path = tmp_path / "data.mat"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"data\.mat: " + pattern):
        read_multiview_mat(path)


def test_missing_keys_name_what_the_file_holds(tmp_path):
    views, y = make_views()
    path = tmp_path / "nolabels.mat"
    sio.savemat(path, {"X": cell(views), "labels_wrong": y})
    with pytest.raises(
        DataError,
        match=r"nolabels\.mat: no labels found; expected one of the keys "
        r"\['Y', 'y', 'gt'\].*labels_wrong",
    ):
        read_multiview_mat(path)
    path = tmp_path / "noviews.mat"
    sio.savemat(path, {"views": cell(views), "Y": y})
    with pytest.raises(
        DataError,
        match=r"noviews\.mat: no cell of views found; expected one of the keys "
        r"\['X', 'data', 'fea'\]",
    ):
        read_multiview_mat(path)
    with pytest.raises(DataError, match=r"no variable 'Z' for the labels"):
        read_multiview_mat(path, views_key="views", labels_key="Z")


def test_views_with_different_sample_counts(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "ragged.mat"
    sio.savemat(
        path,
        {"X": cell([rng.normal(size=(30, 4)), rng.normal(size=(29, 5))]), "Y": np.arange(30) % 3},
    )
    with pytest.raises(
        DataError,
        match=r"ragged\.mat: field X\{2\} is 29 x 5; expected one dimension to equal the "
        r"number of labels \(30\)",
    ):
        read_multiview_mat(path)


def test_labels_not_matching_samples(tmp_path):
    views, y = make_views()
    path = tmp_path / "shortlabels.mat"
    sio.savemat(path, {"X": cell(views), "Y": y[:-2]})
    with pytest.raises(
        DataError, match=r"shortlabels\.mat: field X\{1\} is 30 x 5; expected .* \(28\)"
    ):
        read_multiview_mat(path)


def test_non_integer_and_nan_labels(tmp_path):
    views, y = make_views()
    path = tmp_path / "fl.mat"
    sio.savemat(path, {"X": cell(views), "Y": y + 0.5})
    with pytest.raises(DataError, match=r"fl\.mat: field 'Y' holds non-integer values"):
        read_multiview_mat(path)
    bad = y.astype(float)
    bad[4] = np.nan
    sio.savemat(path, {"X": cell(views), "Y": bad})
    with pytest.raises(DataError, match=r"field 'Y' has 1 NaN/inf labels \(first at sample 4\)"):
        read_multiview_mat(path)


def test_nan_and_inf_features(tmp_path):
    views, y = make_views()
    views[1][7, 2] = np.nan
    path = tmp_path / "nan.mat"
    sio.savemat(path, {"X": cell(views), "Y": y})
    with pytest.raises(
        DataError,
        match=r"nan\.mat: X\{2\} has 1 NaN/inf values \(first at sample 7, feature 2\); "
        r"expected finite",
    ):
        read_multiview_mat(path)
    s = sp.csc_matrix(np.eye(30, 6))
    s.data[0] = np.inf
    sio.savemat(path, {"X": cell([views[0], s]), "Y": y})
    with pytest.raises(DataError, match=r"X\{2\} has 1 NaN/inf values \(in its stored entries\)"):
        read_multiview_mat(path)


def test_views_field_not_a_cell(tmp_path):
    path = tmp_path / "plain.mat"
    sio.savemat(path, {"X": np.ones((30, 4)), "Y": np.arange(30)})
    with pytest.raises(
        DataError, match=r"plain\.mat: field 'X' is a numeric array .*expected a cell"
    ):
        read_multiview_mat(path)


def test_plain_hdf5_with_view_references(tmp_path):
    import h5py

    views, y = make_views(n=15, dims=(4, 6))
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("store")
        refs = np.empty((2,), dtype=h5py.ref_dtype)
        for i, x in enumerate(views):
            refs[i] = g.create_dataset(f"v{i}", data=x).ref
        f.create_dataset("X", data=refs[None, :])
        f.create_dataset("y", data=y)
    assert mat_format(path) == "hdf5"
    data = read_multiview_mat(path)  # numpy order: no MATLAB transposition
    assert data.view_dims == [4, 6] and data.info["stored"] == ["samples x features"] * 2
    np.testing.assert_array_equal(data.views[1], views[1])
