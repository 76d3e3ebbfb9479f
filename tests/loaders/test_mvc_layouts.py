"""MVC benchmarks on files written here in each published layout (the real sets are not
obtainable offline): Caltech101/-20 and NUS-WIDE-OBJ .mat files as MvNNcor reads them, the full
Reuters as sparse v5 and v7.3, Hand as v7.3 / transposed / Vx1, AWA's per-feature folders."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import scipy.sparse as sp

from mv2d_bench.loaders import create
from mv2d_bench.loaders.base import DataError

HERE = Path(__file__).resolve().parent


def _load_helpers():
    spec = importlib.util.spec_from_file_location("mvc_mat_writers", HERE / "test_mvc_matfile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mvc_mat_writers", module)
    spec.loader.exec_module(module)
    return module


W = _load_helpers()
CALTECH_DIMS = [48, 40, 254, 1984, 512, 928]
NUS_DIMS = [64, 225, 144, 73, 128]
REUTERS_DIMS = [21531, 24892, 34251, 15506, 11547]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("MV2D_DATA", raising=False)
    monkeypatch.delenv("MV2D_CACHE", raising=False)


def sorted_labels(counts):
    return np.repeat(np.arange(1, len(counts) + 1), counts)


def mvnncor_mat(path, counts, dims, seed=0, names=None):
    """X (1xV cell), Y (Nx1, 1-based, sorted by class), lenSmp and feanames, as MvNNcor reads."""
    rng = np.random.default_rng(seed)
    y = sorted_labels(counts)
    views = [rng.integers(0, 255, size=(len(y), d), dtype=np.uint8) for d in dims]
    feanames = W.cell([np.array(n) for n in (names or [f"v{i}" for i in range(len(dims))])])
    sio.savemat(
        path,
        {"X": W.cell(views), "Y": y[:, None], "lenSmp": np.array([counts]), "feanames": feanames},
    )
    return views, y


def test_caltech20_full_size(tmp_path):
    counts = [119] * 19 + [125]  # 2386 images of 20 classes
    path = tmp_path / "Caltech101-20.mat"
    views, y = mvnncor_mat(path, counts, CALTECH_DIMS)
    data = create("caltech20", root=tmp_path, dtype="float32").load()
    assert data.view_names == ["gabor", "wavelet_moments", "centrist", "hog", "gist", "lbp"]
    assert data.view_dims == CALTECH_DIMS and data.n_samples == 2386 and data.num_classes == 20
    assert data.class_counts() == counts
    assert data.views[3].dtype == np.float32
    np.testing.assert_array_equal(data.views[3], views[3].astype(np.float32))
    np.testing.assert_array_equal(data.labels, y - 1)


def test_caltech101_layout_checked_against_card(tmp_path):
    counts = [2] * 102
    path = tmp_path / "Caltech101-all.mat"
    mvnncor_mat(path, counts, CALTECH_DIMS)
    bench = create("caltech101", root=path)
    report = bench.verify()
    status = {c["name"]: c["ok"] for c in report["checks"]}
    assert status == {
        "structure": True,
        "view dims": True,
        "samples": False,
        "classes": True,
        "class counts": True,
        "sha256": True,
    }
    assert not report["ok"]
    with pytest.raises(DataError, match=r"samples: 204 \(expected 9144\)"):
        bench.load()
    wrong = tmp_path / "wrong" / "Caltech101-all.mat"
    wrong.parent.mkdir()
    mvnncor_mat(wrong, counts, [48, 40, 254, 1984, 512, 927])
    with pytest.raises(DataError, match=r"lbp has 927 features, expected 928"):
        create("caltech101", root=wrong.parent).load()


def test_nuswideobj_full_size(tmp_path):
    rng = np.random.default_rng(2)
    counts = rng.multinomial(30000 - 31 * 100, [1 / 31] * 31) + 100
    path = tmp_path / "NUSWIDEOBJ.mat"
    views, y = mvnncor_mat(path, counts.tolist(), NUS_DIMS)
    data = create("nuswideobj", root=tmp_path, dtype="float32").load()
    assert data.view_names == ["ch", "cm", "corr", "edh", "wt"]
    assert data.view_dims == NUS_DIMS and data.n_samples == 30000 and data.num_classes == 31
    assert data.class_counts() == counts.tolist()
    np.testing.assert_array_equal(data.views[2][:50], views[2][:50].astype(np.float32))


def _reuters_views(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(1, 7, size=18758)
    n, per_doc = 18758, 3  # a few word counts per document and language
    rows = np.repeat(np.arange(n), per_doc)
    views = [
        sp.csc_matrix(
            (
                rng.integers(1, 5, size=n * per_doc).astype(float),
                (rows, rng.integers(0, d, size=n * per_doc)),
            ),
            shape=(n, d),
        )
        for d in REUTERS_DIMS
    ]
    return views, y


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_reuters_full_size_sparse(tmp_path, version):
    views, y = _reuters_views()
    path = tmp_path / "Reuters.mat"
    if version == "v5":
        sio.savemat(path, {"X": W.cell(views), "Y": y[:, None]})
    else:
        W.write_v73(path, {"X": W.cell(views, (5, 1)), "Y": y[:, None].astype(float)})
    data = create("reuters", root=path).load()
    assert data.info["format"] == ("mat-v5" if version == "v5" else "mat-v7.3")
    assert data.view_names == ["english", "french", "german", "italian", "spanish"]
    assert data.view_dims == REUTERS_DIMS and data.n_samples == 18758
    assert all(sp.issparse(x) for x in data.views)
    assert [x.nnz for x in data.views] == [v.nnz for v in views]
    np.testing.assert_array_equal(data.views[4][:100].toarray(), views[4][:100].toarray())
    assert data.class_counts() == np.bincount(y)[1:].tolist()


def test_reuters_features_by_samples_transposed(tmp_path):
    views, y = _reuters_views(seed=3)
    path = tmp_path / "Reuters.mat"
    sio.savemat(path, {"X": W.cell([v.T for v in views]), "Y": y})
    data = create("reuters", root=path).load()
    assert data.info["stored"] == ["features x samples"] * 5
    assert data.view_dims == REUTERS_DIMS


@pytest.fixture(scope="module")
def hand_like():
    rng = np.random.default_rng(7)
    dims = [240, 76, 216, 47, 64, 6]
    return [rng.normal(size=(2000, d)) for d in dims], np.repeat(np.arange(1, 11), 200)


def test_hand_v73_transposed_column_cell(tmp_path, hand_like):
    views, y = hand_like
    path = tmp_path / "handwritten.mat"
    W.write_v73(path, {"X": W.cell([v.T for v in views], (6, 1)), "Y": y[:, None].astype(float)})
    data = create("hand", root=tmp_path).load()
    assert data.info["format"] == "mat-v7.3" and data.info["cell_shape"] == [6, 1]
    assert data.info["stored"] == ["features x samples"] * 6
    for got, want in zip(data.views, views, strict=True):
        np.testing.assert_array_equal(got, want)
    report = create("hand", root=path).verify()
    (sha,) = [c for c in report["checks"] if c["name"] == "sha256 handwritten.mat"]
    assert not sha["ok"] and "expected 58843f19" in sha["detail"]  # not the published file
    assert not report["ok"]


def test_hand_uci_text_and_csv_layouts(tmp_path, hand_like):
    views, _ = hand_like
    names = ["pix", "fou", "fac", "zer", "kar", "mor"]
    text = tmp_path / "uci"
    text.mkdir()
    for name, x in zip(names, views, strict=True):
        np.savetxt(text / f"mfeat-{name}", x, fmt="%.17g")  # UCI names carry no extension
    data = create("hand", root=text).load()
    assert data.info["format"] == "uci-mfeat-text"
    for got, want in zip(data.views, views, strict=True):
        np.testing.assert_array_equal(got, want)
    csv = tmp_path / "csv"
    csv.mkdir()
    digits = np.repeat(np.arange(10), 200)
    for name, x in zip(names, views, strict=True):
        header = ",".join(str(i) for i in range(x.shape[1])) + ",0"
        table = np.column_stack([x, digits])
        np.savetxt(
            csv / f"mfeat-{name}.csv", table, delimiter=",", header=header, comments="", fmt="%.17g"
        )
    data = create("hand", root=csv).load()
    assert data.info["format"] == "uci-mfeat-csv"
    np.testing.assert_array_equal(data.views[4], views[4])
    np.testing.assert_array_equal(data.labels, digits)
    # a CSV whose label column disagrees with the others
    table = np.column_stack([views[5], np.roll(digits, 1)])
    np.savetxt(csv / "mfeat-mor.csv", table, delimiter=",", header="0,1,2,3,4,5,0", comments="")
    with pytest.raises(DataError, match=r"mfeat-mor\.csv: the label column differs"):
        create("hand", root=csv).load()


def test_hand_text_file_with_wrong_row_count(tmp_path, hand_like):
    views, _ = hand_like
    for name, x in zip(["pix", "fou", "fac", "zer", "kar", "mor"], views, strict=True):
        np.savetxt(tmp_path / f"mfeat-{name}.txt", x[:1999] if name == "pix" else x)
    with pytest.raises(DataError, match=r"mfeat-pix\.txt: 1999 rows; expected 2000"):
        create("hand", root=tmp_path).load()


# -- AWA feature folders -------------------------------------------------------------------------
AWA_DIMS = {"cq": 2688, "lss": 2000, "phog": 252, "rgsift": 2000, "sift": 2000, "surf": 2000}
AWA_CLASSES = ["killer+whale", "antelope", "grizzly+bear"]  # classes.txt order, not alphabetical


def write_awa(root: Path, per_class=(3, 2, 4), seed=0, with_classes_txt=True):
    """Animals_with_Attributes/{classes.txt, Features/<type>-hist/<class>/<class>_<id>.txt}."""
    rng = np.random.default_rng(seed)
    base = root / "Animals_with_Attributes"
    values = {}
    for v, d in AWA_DIMS.items():
        rows = []
        for ci, cname in enumerate(AWA_CLASSES):
            folder = base / "Features" / f"{v}-hist" / cname
            folder.mkdir(parents=True)
            for k in range(per_class[ci]):
                x = rng.random(d).round(6)
                (folder / f"{cname}_{10001 + k}.txt").write_text(
                    " ".join(f"{a:.6f}" for a in x) + "\n"
                )
                rows.append(x)
        values[v] = np.array(rows)
    if with_classes_txt:
        lines = [f"{i + 1:7d}\t{c}" for i, c in enumerate(AWA_CLASSES)]
        (base / "classes.txt").write_text("\n".join(lines) + "\n")
    return base, values


def test_awa_feature_folders(tmp_path):
    base, values = write_awa(tmp_path)
    bench = create("awa", root=tmp_path, cache_dir=tmp_path / "cache")
    data = bench.read()
    assert data.view_names == ["cq", "lss", "phog", "rgsift", "sift", "surf"]
    assert data.view_dims == list(AWA_DIMS.values())
    assert data.info["classes"] == AWA_CLASSES and data.info["class_order"].endswith("classes.txt")
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1, 2, 2, 2, 2])
    for v, x in zip(data.view_names, data.views, strict=True):
        assert x.dtype == np.float32
        np.testing.assert_allclose(x, values[v], rtol=1e-6)
    assert len(bench.files_read) == 9 * 6
    report = bench.verify()
    status = {c["name"]: c["ok"] for c in report["checks"]}
    assert status["structure"] and status["view dims"] and not status["samples"]
    assert not (tmp_path / "cache").exists()  # read() and verify() never write a cache


def test_awa_without_classes_txt_uses_sorted_folders(tmp_path):
    write_awa(tmp_path, with_classes_txt=False)
    data = create("awa", root=tmp_path / "Animals_with_Attributes" / "Features").read()
    assert data.info["classes"] == sorted(AWA_CLASSES)
    assert data.class_counts() == [2, 4, 3]  # antelope, grizzly+bear, killer+whale


def test_awa_mismatched_files_and_bad_values(tmp_path):
    base, _ = write_awa(tmp_path)
    victim = base / "Features" / "surf-hist" / "antelope" / "antelope_10002.txt"
    victim.rename(victim.with_name("antelope_19999.txt"))
    with pytest.raises(
        DataError, match=r"surf-hist/antelope: the image files differ .*antelope_10002"
    ):
        create("awa", root=tmp_path).read()
    victim.with_name("antelope_19999.txt").rename(victim)
    victim.write_text("0.1 0.2 oops\n")
    with pytest.raises(DataError, match=r"antelope_10002\.txt: cannot parse"):
        create("awa", root=tmp_path).read()
    victim.write_text("0.1 0.2\n")
    with pytest.raises(DataError, match=r"antelope_10002\.txt: 2 values; expected 2000"):
        create("awa", root=tmp_path).read()
    victim.write_text("0.1 nan " + "0 " * 1998)
    with pytest.raises(DataError, match=r"surf-hist has 1 NaN/inf values"):
        create("awa", root=tmp_path).read()


def test_awa_missing_feature_folder(tmp_path):
    base, _ = write_awa(tmp_path)
    (base / "Features" / "phog-hist").rename(base / "Features" / "phog-old")
    with pytest.raises(DataError, match=r"missing feature folder\(s\) \['phog-hist'\]"):
        create("awa", root=tmp_path).read()
    data = create("awa", root=tmp_path, views="cq,sift").read()
    assert data.view_names == ["cq", "sift"] and data.view_dims == [2688, 2000]


def test_awa_cache_is_atomic_and_reused(tmp_path):
    write_awa(tmp_path)
    cache = tmp_path / "cache"
    bench = create("awa", root=tmp_path, cache_dir=cache)
    path = bench.prepare()
    assert path.parent == cache and [p.name for p in cache.iterdir()] == [path.name]
    fresh = create("awa", root=tmp_path, cache_dir=cache).read()
    direct = create("awa", root=tmp_path, cache_dir=tmp_path / "elsewhere").read()
    assert fresh.info["cache"] == str(path) and "cache" not in direct.info
    assert fresh.data_sha256 == direct.data_sha256
    for a, b in zip(fresh.views, direct.views, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fresh.labels, direct.labels)


def test_awa_failed_prepare_leaves_no_partial_cache(tmp_path):
    base, _ = write_awa(tmp_path)
    (base / "Features" / "sift-hist" / "grizzly+bear" / "grizzly+bear_10003.txt").write_text("")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"grizzly\+bear_10003\.txt: empty file"):
        create("awa", root=tmp_path, cache_dir=cache).prepare()
    assert not cache.exists() or list(cache.iterdir()) == []
