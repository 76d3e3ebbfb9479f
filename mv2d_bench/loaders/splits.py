"""Stratified train/val/test splits for multi-view classification (the MvNNcor protocol).

Per class, 70 % of the samples go to training, two thirds of the rest to validation and the
remaining third to test (MvNNcor, Xu et al., AAAI 2020: ``dataset/*Dataset.py`` of
github.com/xujinglin/MvNNcor). A split is a pure function of the labels and an integer seed:

* **Order.** Inside each class the samples are ordered by the key
  ``sha256(b"mv2d-bench/split/v1/<seed>/<index>")`` (the first 8 bytes, big-endian; ties broken
  by the index), where ``<index>`` is the sample's position in the data set. Only ``hashlib``
  and integer arithmetic are involved, so the split is identical on every platform, Python and
  NumPy version (NumPy's ``Generator.permutation`` carries no such promise across versions).
* **Rounding, per class with n samples** (exact rational arithmetic, fractions read from their
  decimal text): ``n_train = floor(n * f_train)``, ``n_val = floor((n - n_train) * f_val /
  (f_val + f_test))``, ``n_test = n - n_train - n_val``. This is MvNNcor's ``int(0.7 * n)`` and
  ``int(2/3 * rest)`` without its float error (``int(0.7 * 70)`` is 48 in floating point; here 49).
  For 200 samples a class gives 140/40/20.
* **Identity.** ``split_id`` is ``"stratified-70-20-10/seed-N"``; ``sha256`` is the digest of the
  canonical JSON ``{"train":[...],"val":[...],"test":[...]}`` (sorted indices, no spaces).

**MvNNcor's procedure** (``procedure="mvnncor"``, :func:`mvnncor_split`; the split of protocol
``mvc/accuracy@2``), as its ``dataset/*Dataset.py`` does it: for every class in label order, with
the class's samples in data-set order at positions 0..n-1, Python's generator is re-seeded with
``random.seed(seed)``; ``train = random.sample(range(n), int(0.7 * n))``; the remaining positions
in ascending order form ``rest``; ``val = random.sample(rest, int(2 / 3.0 * len(rest)))``; the
others are test. The float expressions are MvNNcor's own (``int(0.7 * n)``), so seed 300 on
Handwritten gives exactly MvNNcor's Hand split (140/40/20 per digit). Python guarantees the
sequence of ``random.random()`` for a seed, and ``random.sample`` has used the same algorithm
since Python 3.2; the tests pin the resulting sha256. ``split_id`` is ``"mvnncor/seed-N"``.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

PROTOCOL_FRACTIONS = (0.7, 0.2, 0.1)
SPLIT_VERSION = 1
PROCEDURES = ("stratified", "mvnncor")
_PARTS = ("train", "val", "test")


def _frac(x: float | int | str | Fraction) -> Fraction:
    if isinstance(x, Fraction):
        return x
    return Fraction(str(x)) if not isinstance(x, str) else Fraction(x)


def _check_fractions(fractions) -> tuple[Fraction, Fraction, Fraction]:
    if len(fractions) != 3:
        raise ValueError(f"split fractions: expected (train, val, test), got {fractions!r}")
    f = tuple(_frac(x) for x in fractions)
    if f[0] <= 0 or f[1] < 0 or f[2] < 0:
        raise ValueError(f"split fractions: expected train > 0 and val, test >= 0, got {fractions}")
    if sum(f) != 1:
        raise ValueError(f"split fractions: expected a sum of 1, got {fractions} (sum {sum(f)})")
    return f  # type: ignore[return-value]


def class_counts(n: int, fractions=PROTOCOL_FRACTIONS) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) for a class of ``n`` samples (the rounding rule above)."""
    ft, fv, fs = _check_fractions(fractions)
    n_train = int(n * ft)  # floor of a non-negative Fraction
    rest = n - n_train
    n_val = int(rest * fv / (fv + fs)) if fv + fs > 0 else 0
    return n_train, n_val, rest - n_val


def _pct(f: Fraction) -> str:
    p = f * 100
    return str(p.numerator) if p.denominator == 1 else format(float(p), "g")


def split_id_for(seed: int, fractions=PROTOCOL_FRACTIONS) -> str:
    f = _check_fractions(fractions)
    return f"stratified-{'-'.join(_pct(x) for x in f)}/seed-{seed}"


def _order_key(seed: int, index: int) -> int:
    digest = hashlib.sha256(f"mv2d-bench/split/v{SPLIT_VERSION}/{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _digest(train, val, test) -> str:
    payload = {k: [int(i) for i in v] for k, v in zip(_PARTS, (train, val, test), strict=True)}
    text = json.dumps(payload, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def digest_parts(train, val, test) -> str:
    """The ``sha256`` a :class:`Split` of these index parts has (each part sorted)."""
    return _digest(*(np.sort(np.asarray(p, dtype=np.int64)) for p in (train, val, test)))


def labels_digest(labels: np.ndarray) -> str:
    """sha256 of the labels as little-endian int64 (ties a split to the data it was made for)."""
    return hashlib.sha256(np.asarray(labels, dtype="<i8").tobytes()).hexdigest()


@dataclass(frozen=True)
class Split:
    """Sorted int64 index arrays into the data set, plus what identifies them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int
    fractions: tuple[float, float, float] = PROTOCOL_FRACTIONS
    split_id: str = ""
    sha256: str = ""
    n_samples: int = 0
    labels_sha256: str = ""
    per_class: dict[str, list[int]] = field(default_factory=dict)
    """class index (as a string) -> [n_train, n_val, n_test]."""
    procedure: str = "stratified"

    def to_dict(self) -> dict[str, Any]:
        return {
            "split_id": self.split_id,
            "procedure": self.procedure,
            "version": SPLIT_VERSION,
            "seed": self.seed,
            "fractions": list(self.fractions),
            "n_samples": self.n_samples,
            "labels_sha256": self.labels_sha256,
            "sha256": self.sha256,
            "per_class": self.per_class,
            "train": self.train.tolist(),
            "val": self.val.tolist(),
            "test": self.test.tolist(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> Split:
        """Read a split written by :meth:`to_json`; the index lists must match the stored sha256."""
        d = json.loads(text) if isinstance(text, str) else dict(text)
        missing = [k for k in ("split_id", "seed", "sha256", *_PARTS) if k not in d]
        if missing:
            raise ValueError(f"split JSON: missing field(s) {missing}")
        parts = [np.asarray(d[k], dtype=np.int64) for k in _PARTS]
        digest = _digest(*parts)
        if digest != d["sha256"]:
            raise ValueError(
                f"split JSON {d['split_id']}: field 'sha256' is {d['sha256']}, but the index "
                f"lists hash to {digest} (edited or truncated)"
            )
        return cls(
            *parts,
            seed=int(d["seed"]),
            fractions=tuple(d.get("fractions", PROTOCOL_FRACTIONS)),
            split_id=d["split_id"],
            sha256=d["sha256"],
            n_samples=int(d.get("n_samples", sum(len(p) for p in parts))),
            labels_sha256=d.get("labels_sha256", ""),
            per_class={str(k): list(v) for k, v in d.get("per_class", {}).items()},
            procedure=str(d.get("procedure", "stratified")),
        )

    def require_nonempty(self, parts: tuple[str, ...] = _PARTS, source: str = "config") -> None:
        """Raise ValueError naming ``data.fractions`` when one of ``parts`` holds no item."""
        empty = [p for p in parts if len(getattr(self, p)) == 0]
        if empty:
            sizes = "/".join(str(len(getattr(self, p))) for p in _PARTS)
            raise ValueError(
                f"{source}: 'data.fractions' {list(self.fractions)} leaves the "
                f"{' and '.join(empty)} split empty ({self.n_samples} samples -> train/val/test "
                f"{sizes}, rounded down per class); expected fractions that give every split "
                "at least one sample"
            )

    def check(self, labels: np.ndarray) -> None:
        """Raise ValueError unless this split was made for ``labels``."""
        if self.labels_sha256 and labels_digest(labels) != self.labels_sha256:
            raise ValueError(
                f"split {self.split_id}: field 'labels_sha256' does not match these labels "
                f"(made for {self.n_samples} samples; got {len(labels)})"
            )


def _check_args(labels: np.ndarray, seed: Any) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"make_split: labels must be one-dimensional, got shape {labels.shape}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"make_split: seed must be a non-negative integer, got {seed!r}")
    return labels, int(seed)


def mvnncor_split(labels: np.ndarray, seed: int) -> Split:
    """MvNNcor's split of ``labels`` for ``seed`` (see the module docstring)."""
    labels, seed = _check_args(labels, seed)
    parts: dict[str, list[int]] = {k: [] for k in _PARTS}
    per_class: dict[str, list[int]] = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = len(members)
        rng = random.Random(seed)  # the same state as MvNNcor's random.seed(seed)
        train = set(rng.sample(range(n), int(0.7 * n)))
        rest = [r for r in range(n) if r not in train]
        val = set(rng.sample(rest, int(2 / 3.0 * len(rest))))
        test = [r for r in rest if r not in val]
        parts["train"] += members[sorted(train)].tolist()
        parts["val"] += members[sorted(val)].tolist()
        parts["test"] += members[test].tolist()
        per_class[str(c.item() if hasattr(c, "item") else c)] = [len(train), len(val), len(test)]
    arrays = [np.sort(np.asarray(parts[k], dtype=np.int64)) for k in _PARTS]
    return Split(
        *arrays,
        seed=seed,
        fractions=PROTOCOL_FRACTIONS,
        split_id=f"mvnncor/seed-{seed}",
        sha256=_digest(*arrays),
        n_samples=int(labels.shape[0]),
        labels_sha256=labels_digest(labels) if np.issubdtype(labels.dtype, np.integer) else "",
        per_class=per_class,
        procedure="mvnncor",
    )


def make_split(
    labels: np.ndarray, seed: int, fractions=PROTOCOL_FRACTIONS, procedure: str = "stratified"
) -> Split:
    """The split of ``labels`` (class per sample) for ``seed`` by ``procedure`` (module doc)."""
    if procedure == "mvnncor":
        if tuple(_frac(x) for x in fractions) != tuple(_frac(x) for x in PROTOCOL_FRACTIONS):
            raise ValueError(
                f"data.fractions: the mvnncor split is MvNNcor's 70 % / 2/3 of the rest; expected "
                f"[0.7, 0.2, 0.1], got {list(fractions)}"
            )
        return mvnncor_split(labels, seed)
    if procedure != "stratified":
        raise ValueError(f"data.split: expected one of {', '.join(PROCEDURES)}; got {procedure!r}")
    labels, seed = _check_args(labels, seed)
    f = _check_fractions(fractions)
    parts: dict[str, list[int]] = {k: [] for k in _PARTS}
    per_class: dict[str, list[int]] = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c).tolist()
        members.sort(key=lambda i: (_order_key(seed, i), i))
        n_tr, n_va, n_te = class_counts(len(members), f)
        parts["train"] += members[:n_tr]
        parts["val"] += members[n_tr : n_tr + n_va]
        parts["test"] += members[n_tr + n_va :]
        per_class[str(c.item() if hasattr(c, "item") else c)] = [n_tr, n_va, n_te]
    arrays = [np.sort(np.asarray(parts[k], dtype=np.int64)) for k in _PARTS]
    return Split(
        *arrays,
        seed=seed,
        fractions=tuple(float(x) for x in fractions),
        split_id=split_id_for(seed, f),
        sha256=_digest(*arrays),
        n_samples=int(labels.shape[0]),
        labels_sha256=labels_digest(labels) if np.issubdtype(labels.dtype, np.integer) else "",
        per_class=per_class,
    )


# -- splits that come with the data ------------------------------------------------------------
@dataclass(frozen=True)
class GivenSplit:
    """A split published with the data (a ``.mat`` file's train/test variables, a dataset's own
    splits): index arrays into the data set, as the data defines them.

    :meth:`resolve` turns it into the :class:`Split` a run uses. With a given validation part
    nothing is drawn: ``split_id`` is ``"predefined-<source>/<name>"``. Without one, validation is
    carved from the given training part per class, in the protocol's train:val proportion
    (``f_train : f_val``, 70:20 by default, so ``n_train = floor(n * 7/9)`` of a class's ``n``
    training samples stay in training), with the same sha256 order as :func:`make_split` for the
    seed: ``split_id`` is ``"predefined-<source>/<name>/val-from-train-70-20/seed-N"``. The test
    part is always used as given.
    """

    source: str
    """Where the split comes from: "mat" (a file's *_train/*_test variables), "hf" ..."""
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray | None = None
    name: str = "train-test"
    """What the parts are, for the split id (e.g. "train-test", "train-validation-test")."""

    def resolve(self, labels: np.ndarray, seed: int, fractions=PROTOCOL_FRACTIONS) -> Split:
        labels = np.asarray(labels)
        ft, fv, _ = _check_fractions(fractions)
        train = np.asarray(self.train, dtype=np.int64)
        test = np.asarray(self.test, dtype=np.int64)
        if self.val is not None:
            val = np.asarray(self.val, dtype=np.int64)
            split_id = f"predefined-{self.source}/{self.name}"
        else:
            keep: list[int] = []
            carved: list[int] = []
            share = (ft / (ft + fv), fv / (ft + fv), Fraction(0))
            for c in np.unique(labels[train]):
                members = train[labels[train] == c].tolist()
                members.sort(key=lambda i: (_order_key(seed, i), i))
                n_tr, _, _ = class_counts(len(members), share)
                keep += members[:n_tr]
                carved += members[n_tr:]
            train, val = np.asarray(keep, dtype=np.int64), np.asarray(carved, dtype=np.int64)
            ratio = f"{_pct(ft)}-{_pct(fv)}"
            split_id = f"predefined-{self.source}/{self.name}/val-from-train-{ratio}/seed-{seed}"
        parts = [np.sort(p) for p in (train, val, test)]
        everything = np.concatenate(parts)
        if len(np.unique(everything)) != len(everything):
            raise ValueError(f"split {split_id}: the given parts overlap (an index is in two)")
        per_class: dict[str, list[int]] = {}
        for c in np.unique(labels[everything]):
            per_class[str(c.item() if hasattr(c, "item") else c)] = [
                int(np.sum(labels[p] == c)) for p in parts
            ]
        return Split(
            *parts,
            seed=int(seed),
            fractions=tuple(float(x) for x in fractions),
            split_id=split_id,
            sha256=_digest(*parts),
            n_samples=int(labels.shape[0]),
            labels_sha256=labels_digest(labels) if np.issubdtype(labels.dtype, np.integer) else "",
            per_class=per_class,
            procedure="predefined",
        )
