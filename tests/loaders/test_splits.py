"""Stratified 70/20/10 splits and train-only standardisation."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import scipy.sparse as sp

from mv2d_bench.loaders.splits import Split, class_counts, make_split, split_id_for
from mv2d_bench.loaders.standardize import apply_standardizer, fit_standardizer

HAND_LABELS = np.repeat(np.arange(10), 200)
# Pinned so that drift across platforms / Python / NumPy versions is caught.
HAND_SEED0_SHA256 = "6da6a7f790784a2ea8dbb92d759b343361531c33b7e9c801dbc1cb1b668b843f"


def test_counts_per_class_follow_the_stated_rule():
    s = make_split(HAND_LABELS, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (1400, 400, 200)
    for c in range(10):
        assert (HAND_LABELS[s.train] == c).sum() == 140
        assert (HAND_LABELS[s.val] == c).sum() == 40
        assert (HAND_LABELS[s.test] == c).sum() == 20
    assert s.per_class["3"] == [140, 40, 20]


@pytest.mark.parametrize(
    "n, expected",
    [
        (200, (140, 40, 20)),
        (70, (49, 14, 7)),
        (10, (7, 2, 1)),
        (5, (3, 1, 1)),
        (2, (1, 0, 1)),
        (1, (0, 0, 1)),
        (31, (21, 6, 4)),
        (0, (0, 0, 0)),
    ],
)
def test_rounding_rule_exact(n, expected):
    # floor(7n/10), floor(2/3 of the rest), remainder: computed independently with integers
    n_tr = (7 * n) // 10
    n_va = (2 * (n - n_tr)) // 3
    assert (n_tr, n_va, n - n_tr - n_va) == expected
    assert class_counts(n) == expected


def test_unbalanced_classes_stratified_and_disjoint():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 7, size=1234)
    s = make_split(labels, seed=3)
    all_idx = np.concatenate([s.train, s.val, s.test])
    assert len(all_idx) == 1234 and len(np.unique(all_idx)) == 1234
    assert not set(s.train) & set(s.val) and not set(s.val) & set(s.test)
    for part in (s.train, s.val, s.test):
        assert part.dtype == np.int64 and np.all(np.diff(part) > 0)
    for c in range(7):
        n = int((labels == c).sum())
        got = tuple(int((labels[p] == c).sum()) for p in (s.train, s.val, s.test))
        assert got == class_counts(n)


def test_deterministic_and_seed_dependent():
    a, b = make_split(HAND_LABELS, seed=0), make_split(HAND_LABELS, seed=0)
    assert np.array_equal(a.train, b.train) and a.sha256 == b.sha256
    c = make_split(HAND_LABELS, seed=1)
    assert not np.array_equal(a.test, c.test)
    assert a.split_id == "stratified-70-20-10/seed-0" and c.split_id.endswith("seed-1")


def test_pinned_sha256_and_digest_definition():
    s = make_split(HAND_LABELS, seed=0)
    text = json.dumps(
        {"train": s.train.tolist(), "val": s.val.tolist(), "test": s.test.tolist()},
        separators=(",", ":"),
    )
    assert hashlib.sha256(text.encode()).hexdigest() == s.sha256 == HAND_SEED0_SHA256


def test_order_is_the_documented_hash_order():
    labels = np.zeros(10, dtype=np.int64)
    s = make_split(labels, seed=7)

    def key(i):
        d = hashlib.sha256(f"mv2d-bench/split/v1/7/{i}".encode()).digest()
        return int.from_bytes(d[:8], "big"), i

    order = sorted(range(10), key=key)
    assert s.train.tolist() == sorted(order[:7])
    assert s.val.tolist() == sorted(order[7:9])
    assert s.test.tolist() == sorted(order[9:])


def test_json_round_trip_and_tamper_detection():
    s = make_split(HAND_LABELS, seed=2)
    back = Split.from_json(s.to_json())
    assert back.split_id == s.split_id and back.sha256 == s.sha256
    assert np.array_equal(back.val, s.val)
    back.check(HAND_LABELS)
    d = json.loads(s.to_json())
    d["test"][0], d["train"][0] = d["train"][0], d["test"][0]
    with pytest.raises(ValueError, match="sha256"):
        Split.from_json(json.dumps(d))
    with pytest.raises(ValueError, match="labels_sha256"):
        back.check(HAND_LABELS[::-1])


def test_other_fractions_and_bad_arguments():
    assert split_id_for(4, (0.6, 0.2, 0.2)) == "stratified-60-20-20/seed-4"
    s = make_split(HAND_LABELS, seed=0, fractions=(0.6, 0.2, 0.2))
    assert (len(s.train), len(s.val), len(s.test)) == (1200, 400, 400)
    with pytest.raises(ValueError, match="sum of 1"):
        make_split(HAND_LABELS, 0, (0.7, 0.2, 0.2))
    with pytest.raises(ValueError, match="seed"):
        make_split(HAND_LABELS, -1)


def test_standardizer_fitted_on_train_only():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(100, 4))
    x[:, 2] = 5.0  # constant feature: std 0 -> 1
    train = np.arange(60)
    x[60:] += 100.0  # the non-training rows must not influence the fit
    (stats,) = fit_standardizer([x], train)
    np.testing.assert_allclose(stats.mean, x[:60].mean(0))
    assert stats.std[2] == 1.0
    np.testing.assert_allclose(stats.std[[0, 1, 3]], x[:60][:, [0, 1, 3]].std(0))
    (z,) = apply_standardizer([x], [stats])
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:60].mean(0), [0, 0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(z[:60, [0, 1, 3]].std(0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(z[:60, 2], 0.0)
    np.testing.assert_allclose(z[60:, 2], 100.0)  # std 1: only the unseen offset remains


def test_standardizer_sparse_scales_only_and_stays_sparse():
    rng = np.random.default_rng(1)
    dense = rng.random((50, 6)) * (rng.random((50, 6)) < 0.3)
    dense[:, 5] = 0.0
    x = sp.csr_matrix(dense)
    train = np.arange(0, 50, 2)
    (stats,) = fit_standardizer([x], train)
    assert np.all(stats.mean == 0)
    expect_std = dense[train].std(0)
    expect_std[expect_std == 0] = 1.0
    np.testing.assert_allclose(stats.std, expect_std, rtol=1e-10)
    (z,) = apply_standardizer([x], [stats])
    assert sp.issparse(z) and z.nnz == x.nnz
    np.testing.assert_allclose(z.toarray(), dense / expect_std, rtol=1e-6)


# -- MvNNcor's split procedure (mvc/accuracy@2) -------------------------------------------------
def _mvnncor_reference(class_sizes, seed):
    """MvNNcor's dataset/*Dataset.py loop, written out: classes in contiguous blocks."""
    import random

    parts = {"train": [], "val": [], "test": []}
    start = 0
    for n in class_sizes:
        random.seed(int(seed))
        train = random.sample(range(0, n), int(0.7 * n))
        rem = [r for r in range(0, n) if r not in train]
        val = random.sample(rem, int(2 / 3.0 * len(rem)))
        test = [r for r in rem if r not in val]
        for name, pos in (("train", train), ("val", val), ("test", test)):
            parts[name] += [start + p for p in pos]
        start += n
    return {k: sorted(v) for k, v in parts.items()}


@pytest.mark.parametrize("sizes", [[200] * 10, [100] * 21, [37, 120, 81, 4, 150]])
@pytest.mark.parametrize("seed", [300, 0, 7])
def test_mvnncor_split_equals_its_dataset_loop(sizes, seed):
    from mv2d_bench.loaders.splits import make_split

    labels = np.repeat(np.arange(len(sizes)), sizes)
    split = make_split(labels, seed, procedure="mvnncor")
    want = _mvnncor_reference(sizes, seed)
    for part in ("train", "val", "test"):
        assert split.__getattribute__(part).tolist() == want[part]
    assert split.split_id == f"mvnncor/seed-{seed}" and split.procedure == "mvnncor"
    for c, n in enumerate(sizes):
        n_train = int(0.7 * n)  # MvNNcor's float arithmetic, e.g. 0.7 * 37 -> 25
        n_val = int(2 / 3.0 * (n - n_train))
        assert split.per_class[str(c)] == [n_train, n_val, n - n_train - n_val]


def test_mvnncor_hand_split_counts_and_pinned_digest():
    from mv2d_bench.loaders.splits import make_split

    labels = np.repeat(np.arange(10), 200)  # Hand: 200 per digit, in digit order
    split = make_split(labels, 300, procedure="mvnncor")
    assert (len(split.train), len(split.val), len(split.test)) == (1400, 400, 200)
    assert all(v == [140, 40, 20] for v in split.per_class.values())
    # the Python random stream of seed 300 must not change under us
    assert split.sha256 == "111aa94d2b3cfd304211a8221b0ffdc267f6528853daabc40823639e4d0fd855"
    with pytest.raises(ValueError, match="data.fractions"):
        make_split(labels, 300, (0.8, 0.1, 0.1), procedure="mvnncor")


def test_split_seeds_of_accuracy_at_2_come_from_the_data_cards():
    from mv2d_bench import loaders
    from mv2d_bench.leaderboards.protocols import get

    want = {
        "hand": (300, 301, 302, 303, 304),  # MvNNcor's HandwrittenDataset.py seed first
        "caltech101": (200, 201, 202, 203, 204),
        "caltech20": (200, 201, 202, 203, 204),
        "nuswideobj": (500, 501, 502, 503, 504),
        "reuters": (600, 601, 602, 603, 604),
        "awa": (100, 101, 102, 103, 104),
        "reuters1200": (0, 1, 2, 3, 4),  # no MvNNcor seed: the family default
        "scene15": (0, 1, 2, 3, 4),
        "landuse21": (0, 1, 2, 3, 4),
    }
    for name, seeds in want.items():
        assert loaders.get(name).split_seeds() == seeds, name
    v2 = get("mvc/accuracy@2")
    assert v2.split_ids("hand") == tuple(f"mvnncor/seed-{s}" for s in want["hand"])
    assert v2.required_splits == len(want["hand"]) == 5 and v2.required_seeds == 2
