"""The .mat layouts beyond a cell of views, written exactly as the repositories publish them:

* TMC (ICLR 2021, hanmenghan/TMC, ``handwritten_6views.mat``): ``x1_train`` ... ``x6_test``
  (uint8, float64 and uint16 matrices, samples x features) and ``gt_train``/``gt_test`` (uint8,
  N x 1, 1-based), MATLAB v5 - a predefined train/test split;
* ``HMDB51_HOG_MBH.mat`` of the same line of work: ``x1``, ``x2``, ``gt`` in MATLAB v7.3;
* NoisyMNIST / MNIST-USPS / Caltech_2v of the incomplete multi-view repositories: ``X1``, ``X2``
  (``X3``) and ``Y``;
* ``view_*`` variables, and cells ``X_train``/``X_test`` with ``Y_train``/``Y_test``.

Every mixed or incomplete layout is refused with the variables found.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from mv2d_bench.cli import main
from mv2d_bench.loaders import create
from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.matfile import read_multiview_mat
from mv2d_bench.loaders.splits import GivenSplit

# the MATLAB v7.3 writer and the cell helper of test_mvc_matfile.py
W = sys.modules.get("mvc_mat_writers")
if W is None:
    _spec = importlib.util.spec_from_file_location(
        "mvc_mat_writers", Path(__file__).with_name("test_mvc_matfile.py")
    )
    W = sys.modules["mvc_mat_writers"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(W)


def tmc_views(n_train_per_class=16, n_test_per_class=4, classes=5, seed=0):
    """Three views in the real file's dtypes, labels 1..C grouped by class as in the file."""
    rng = np.random.default_rng(seed)
    out = {}
    for part, per in (("train", n_train_per_class), ("test", n_test_per_class)):
        n = per * classes
        out[f"x1_{part}"] = rng.integers(0, 255, size=(n, 12)).astype(np.uint8)
        out[f"x2_{part}"] = rng.normal(size=(n, 5))
        out[f"x3_{part}"] = rng.integers(0, 4000, size=(n, 7)).astype(np.uint16)
        out[f"gt_{part}"] = (np.repeat(np.arange(classes), per) + 1).astype(np.uint8)[:, None]
    return out


def test_tmc_predefined_split_is_read_and_used_as_given(tmp_path):
    variables = tmc_views()
    path = tmp_path / "handwritten_3views.mat"
    sio.savemat(path, variables)
    data = read_multiview_mat(path)
    assert data.view_dims == [12, 5, 7] and data.n_samples == 100 and data.num_classes == 5
    for i in range(3):  # training samples first, then test, values exact
        want = np.concatenate([variables[f"x{i + 1}_train"], variables[f"x{i + 1}_test"]])
        np.testing.assert_array_equal(data.views[i], want.astype(np.float64))
    raw = np.concatenate([variables["gt_train"], variables["gt_test"]]).ravel()
    np.testing.assert_array_equal(data.labels, raw.astype(np.int64) - 1)
    assert data.info["split"] == {"train": 80, "test": 20}
    assert data.info["labels_key"] == "gt_train/gt_test" and data.info["ignored_keys"] == []
    assert data.info["view_fields"][0] == "x1_train + x1_test"

    split = data.make_split(seed=3)
    np.testing.assert_array_equal(split.test, np.arange(80, 100))  # the test part as given
    assert split.split_id == "predefined-mat/train-test/val-from-train-70-20/seed-3"
    assert not set(split.val) & set(split.train)
    assert set(split.val) | set(split.train) == set(range(80))
    for c in range(5):  # 16 training samples a class: floor(16 * 7/9) = 12 stay, 4 validate
        assert (data.labels[split.train] == c).sum() == 12
        assert (data.labels[split.val] == c).sum() == 4
        assert split.per_class[str(c)] == [12, 4, 4]
    other = data.make_split(seed=4)
    assert not np.array_equal(other.val, split.val) and np.array_equal(other.test, split.test)
    assert data.make_split(seed=3).sha256 == split.sha256
    assert split.procedure == "predefined"
    with pytest.raises(DataError, match=r"data.split = 'mvnncor', but the data comes with its own"):
        data.make_split(seed=3, procedure="mvnncor")


def test_mvmat_run_uses_the_predefined_split_and_records_it(tmp_path, capsys):
    path = tmp_path / "tmc.mat"
    sio.savemat(path, tmc_views())
    args = ["run", "--benchmark", "mvmat", "--root", str(path), "--objective", "vsd",
            "--epochs", "1", "--no-progress", "--out", str(tmp_path / "runs"),
            "--set", "run.threads=1", "--set", "model.hidden=[16, 8]", "--set", "model.z_dim=4",
            "--set", "train.batch_size=16"]  # fmt: skip
    assert main(args) == 0
    record = json.loads(Path(capsys.readouterr().out.strip().splitlines()[-1]).read_text())
    data = read_multiview_mat(path)
    split = data.make_split(seed=0)
    assert record["benchmark"]["split_id"] == split.split_id
    assert record["benchmark"]["split_id"].startswith("predefined-mat/train-test/")
    assert record["benchmark"]["split_sha256"] == split.sha256


def test_hmdb_per_view_variables_in_v73(tmp_path):
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(24, 6)), rng.normal(size=(24, 9))
    gt = (np.arange(24) % 4 + 1).astype(np.float64)[:, None]
    path = tmp_path / "HMDB51_HOG_MBH.mat"
    W.write_v73(path, {"gt": gt, "x1": x1, "x2": x2})
    data = read_multiview_mat(path)
    assert data.info["format"] == "mat-v7.3" and data.given_split is None
    assert data.view_dims == [6, 9] and data.info["view_fields"] == ["x1", "x2"]
    np.testing.assert_array_equal(data.views[0], x1)
    np.testing.assert_array_equal(data.views[1], x2)
    np.testing.assert_array_equal(data.labels, np.arange(24) % 4)
    assert data.make_split(0).split_id == "stratified-70-20-10/seed-0"


def test_uppercase_per_view_variables_transposed_view_and_extra_keys(tmp_path):
    rng = np.random.default_rng(2)
    views = [rng.normal(size=(30, d)) for d in (4, 3, 5)]
    path = tmp_path / "Caltech_3v.mat"
    sio.savemat(path, {"X1": views[0], "X2": views[1].T, "X3": views[2],
                       "Y": np.arange(30) % 3, "missing_matrix": np.ones((30, 3))})  # fmt: skip
    data = read_multiview_mat(path)
    assert data.info["stored"] == ["samples x features", "features x samples", "samples x features"]
    for got, want in zip(data.views, views, strict=True):
        np.testing.assert_array_equal(got, want)
    assert data.info["ignored_keys"] == ["missing_matrix"]


def test_view_star_variables_order_by_number_then_by_name(tmp_path):
    rng = np.random.default_rng(3)
    views = {f"view_{i}": rng.normal(size=(12, i)) for i in (10, 2, 11, 1, 3, 4, 5, 6, 7, 8, 9)}
    path = tmp_path / "numbered.mat"
    sio.savemat(path, {**views, "y": np.arange(12) % 2})
    data = read_multiview_mat(path)
    assert data.info["view_fields"] == [f"view_{i}" for i in range(1, 12)]  # not view_1, view_10
    assert data.view_dims == list(range(1, 12))
    assert data.info["layout"] == "per-view views view_1..view_11, labels y"

    named = tmp_path / "named.mat"
    sio.savemat(named, {"view_hog": rng.normal(size=(12, 3)), "view_gist": rng.normal(size=(12, 2)),
                        "gt": np.arange(12) % 3})  # fmt: skip
    assert read_multiview_mat(named).info["view_fields"] == ["view_gist", "view_hog"]


def test_split_cells_with_y_train_y_test_in_v73(tmp_path):
    rng = np.random.default_rng(4)
    train = [rng.normal(size=(20, 3)), rng.normal(size=(20, 2))]
    test = [rng.normal(size=(10, 3)), rng.normal(size=(10, 2))]
    path = tmp_path / "cells.mat"
    W.write_v73(path, {"X_train": W.cell(train), "X_test": W.cell(test),
                       "Y_train": (np.arange(20) % 2)[:, None].astype(float),
                       "Y_test": (np.arange(10) % 2)[:, None].astype(float)})  # fmt: skip
    data = read_multiview_mat(path)
    assert data.info["views_key"] == "X_train/X_test" and data.info["split"] == {
        "train": 20,
        "test": 10,
    }
    np.testing.assert_array_equal(data.views[1], np.concatenate([train[1], test[1]]))
    assert isinstance(data.given_split, GivenSplit)
    np.testing.assert_array_equal(data.make_split(0).test, np.arange(20, 30))


def _refused(tmp_path, variables, pattern):
    path = tmp_path / "bad.mat"
    sio.savemat(path, variables)
    with pytest.raises(DataError, match=pattern):
        read_multiview_mat(path)


def test_mixed_layouts_are_refused_naming_the_variables(tmp_path):
    rng = np.random.default_rng(5)
    v, y = rng.normal(size=(10, 3)), np.arange(10) % 2
    _refused(
        tmp_path,
        {"X": W.cell([v, v]), "x1": v, "x2": v, "Y": y},
        r"bad\.mat: mixed multi-view layouts: a cell X and per-view variables x1, x2; expected "
        r"one layout",
    )
    _refused(
        tmp_path,
        {"x1": v, "x1_train": v, "x1_test": v, "gt_train": y, "gt_test": y},
        r"mixed multi-view layouts: per-view variables x1 and predefined-split variables "
        r"x1_train, x1_test",
    )
    _refused(
        tmp_path, {"x1": v, "X1": v, "Y": y}, r"per-view variables x1 and per-view variables X1"
    )
    _refused(
        tmp_path,
        {"x1_train": v, "x1_test": v, "Y": y},
        r"mixed multi-view layouts: predefined-split variables x1_train, x1_test and unsplit "
        r"labels Y",
    )
    _refused(
        tmp_path,
        {"X": W.cell([v]), "gt_train": y, "gt_test": y},
        r"mixed multi-view layouts: a cell X and split labels gt_train, gt_test",
    )


def test_partial_layouts_are_refused_naming_what_is_missing(tmp_path):
    rng = np.random.default_rng(6)
    v, y = rng.normal(size=(10, 3)), np.arange(10) % 2
    _refused(
        tmp_path,
        {"x1_train": v, "x2_train": v, "x1_test": v, "gt_train": y, "gt_test": y},
        r"bad\.mat: incomplete multi-view layout: x2_train without x2_test; expected every view "
        r"as both <view>_train and <view>_test",
    )
    _refused(
        tmp_path,
        {"x1_train": v, "x1_test": v, "gt_train": y},
        r"incomplete multi-view layout: labels gt_train without gt_test",
    )
    _refused(
        tmp_path,
        {"x1_train": v, "x1_test": v},
        r"predefined-split variables x1_train, x1_test but no split labels; expected "
        r"gt_train/gt_test",
    )
    _refused(
        tmp_path,
        {"x1": v, "x2": v, "x4": v, "gt": y},
        r"incomplete multi-view layout: per-view variables x1, x2, x4: x3 missing",
    )
    _refused(tmp_path, {"x2": v, "x3": v, "gt": y}, r"x1 missing")
    _refused(
        tmp_path,
        {"X_train": W.cell([v]), "Y_train": y, "Y_test": y},
        r"incomplete multi-view layout: a cell X_train without X_test",
    )
    _refused(
        tmp_path,
        {"x1_train": v, "x1_test": rng.normal(size=(10, 4)), "gt_train": y, "gt_test": y},
        r"bad\.mat: x1 has 3 features in x1_train and 4 in x1_test",
    )


def test_inspect_shows_the_layout_and_the_split(tmp_path, capsys):
    path = tmp_path / "tmc.mat"
    sio.savemat(path, tmc_views())
    assert main(["data", "inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["split"] == {"train": 80, "test": 20}
    assert report["views_key"] is None and report["labels_key"] == "gt_train/gt_test"
    assert [v["field"] for v in report["views"]] == [
        "x1_train + x1_test",
        "x2_train + x2_test",
        "x3_train + x3_test",
    ]
    assert main(["data", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "predefined split: 80 train, 20 test" in out and "x3_train + x3_test" in out
    bad = tmp_path / "half.mat"
    sio.savemat(bad, {"x1_train": np.ones((4, 2)), "gt_train": np.ones(4), "gt_test": np.ones(2)})
    assert main(["data", "inspect", str(bad), "--json"]) == 1
    assert "x1_train without x1_test" in json.loads(capsys.readouterr().out)["error"]


def test_mvmat_benchmark_verify_on_a_predefined_split(tmp_path):
    path = tmp_path / "tmc.mat"
    sio.savemat(path, tmc_views())
    bench = create("mvmat", root=path)
    report = bench.verify()
    assert report["ok"], report
    assert report["summary"]["layout"]["split"] == {"train": 80, "test": 20}
