"""synthetic-mv: deterministic generation with a known information structure, and corruption."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mv2d_bench import loaders
from mv2d_bench.loaders.mvc import MvcData
from mv2d_bench.loaders.synthetic import SyntheticMV


def test_registered_and_shaped_as_asked():
    bench = loaders.create("synthetic-mv", n_views=3, samples=300, num_classes=3, dims=[5, 7, 9])
    assert isinstance(bench, SyntheticMV) and bench.family == "mvc"
    data = bench.load()
    assert isinstance(data, MvcData)
    assert data.view_dims == [5, 7, 9]
    assert data.view_names == ["view1", "view2", "view3"]
    assert data.labels.dtype == np.int64
    assert data.class_counts() == [100, 100, 100]
    assert all(np.isfinite(x).all() for x in data.views)


def test_same_seed_same_data_other_seed_other_data():
    a = SyntheticMV(seed=3).load()
    b = SyntheticMV(seed=3).load()
    c = SyntheticMV(seed=4).load()
    assert a.data_sha256 == b.data_sha256
    assert all(np.array_equal(x, y) for x, y in zip(a.views, b.views, strict=True))
    assert a.data_sha256 != c.data_sha256
    assert not np.array_equal(a.views[0], c.views[0])


def _fit_score(train_x, train_y, test_x, test_y) -> float:
    clf = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean())


def test_corrupting_specific_factors_removes_what_only_they_carry():
    bench = SyntheticMV(
        n_views=2, samples=1600, num_classes=4, dims=12, label_factors="specific",
        specific_strength=3.0, noise=0.1, nonlinear=False, nuisance_dim=2, seed=1,
    )  # fmt: skip
    data = bench.load()
    train, test = np.arange(0, 1200), np.arange(1200, 1600)
    x = np.hstack(data.views)
    clean = _fit_score(x[train], data.labels[train], x[test], data.labels[test])
    views, labels = bench.corrupted_views(test, seed=0)
    assert np.array_equal(labels, data.labels[test])
    corrupted = _fit_score(x[train], data.labels[train], np.hstack(views), labels)
    assert clean > 0.95
    assert corrupted < 0.5  # 4 classes: the label information was only view-specific


def test_corruption_leaves_shared_information_alone():
    bench = SyntheticMV(n_views=3, samples=400, label_factors="shared", seed=2)
    data = bench.load()
    idx = np.arange(100, 200)
    views, _ = bench.corrupted_views(idx, seed=5)
    # specific factors carry no label here: re-centring them on another class mean is a no-op
    for x, y in zip(views, data.views, strict=True):
        np.testing.assert_allclose(x, y[idx], atol=1e-12)


def test_corruption_changes_only_the_specific_part_and_is_seeded():
    bench = SyntheticMV(n_views=2, samples=200, nonlinear=False, noise=0.0, seed=0)
    data = bench.load()
    idx = np.arange(50)
    v1, _ = bench.corrupted_views(idx, seed=1)
    v1b, _ = bench.corrupted_views(idx, seed=1)
    v2, _ = bench.corrupted_views(idx, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(v1, v1b, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(v1, v2, strict=True))
    # linear views: the change lies in the span of the specific block of the mixing matrix
    g = bench._generate()
    p = bench.params
    start = p["shared_dim"] + p["partial_dim"]
    block = g["maps"][0][start : start + p["specific_dim"]]  # (specific_dim, dims)
    delta = v1[0] - data.views[0][idx]
    coef, *_ = np.linalg.lstsq(block.T, delta.T, rcond=None)
    np.testing.assert_allclose(block.T @ coef, delta.T, atol=1e-9)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_views": 0}, "n_views"),
        ({"dims": [4, 4]}, "dims"),
        ({"label_factors": "nuisance"}, "label_factors"),
        ({"samples": 5}, "samples"),
        ({"noise": -1.0}, "noise"),
        ({"colour": 1}, "unknown option"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        SyntheticMV(**options)
