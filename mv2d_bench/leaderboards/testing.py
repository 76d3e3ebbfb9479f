"""Realistic run records for tests (this package's and plugins'): every field is filled the way
the harness fills it, and the metrics come from scoring predictions with the real protocol.

>>> from mv2d_bench.leaderboards.testing import mvc_record
>>> rec = mvc_record("hand", "mv2d", seed=0, errors=1)   # 200 test items, 1 wrong: 99.5 %
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from typing import Any

import numpy as np

# sha256 of ../shared/data/multiview/handwritten.mat (SHA256SUMS there)
HAND_MAT_SHA256 = "58843f19f3cea95dd3c506b2d44484b4589cc56c45786061db0778366c72bf06"

MVC_SETS: dict[str, dict[str, Any]] = {
    "hand": {"n": 2000, "classes": 10, "dims": [240, 76, 216, 47, 64, 6]},
    "reuters1200": {"n": 1200, "classes": 6, "dims": [2000] * 5},
    "scene15": {"n": 4485, "classes": 15, "dims": [20, 59, 40]},
    "landuse21": {"n": 2100, "classes": 21, "dims": [20, 59, 40]},
    "synthetic-mv": {"n": 3000, "classes": 10, "dims": [32, 32, 32]},
}


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def per_class_split(labels: np.ndarray, seed: int, fractions=(0.7, 0.2, 0.1)) -> dict[str, list]:
    """A stratified train/val/test split of ``labels`` (index lists), as the MVC protocol draws."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_tr = int(round(fractions[0] * idx.size))
        n_va = int(round(fractions[1] * idx.size))
        out["train"] += idx[:n_tr].tolist()
        out["val"] += idx[n_tr : n_tr + n_va].tolist()
        out["test"] += idx[n_tr + n_va :].tolist()
    return {k: sorted(v) for k, v in out.items()}


def mvc_record(
    benchmark: str = "hand",
    objective: str = "mv2d",
    *,
    seed: int = 0,
    errors: int = 1,
    split_seed: int = 0,
    objective_params: dict[str, Any] | None = None,
    model_params: dict[str, Any] | None = None,
    epochs: int = 160,
    protocol: str = "mvc/accuracy@1",
    created: str = "2026-01-15T10:00:00+00:00",
    artifacts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A run record of ``objective`` on an MVC benchmark whose test predictions have ``errors``
    mistakes (accuracy = 100 * (n_test - errors) / n_test, scored by the protocol)."""
    from mv2d_bench.leaderboards.protocols import get

    info = MVC_SETS[benchmark]
    labels = np.repeat(np.arange(info["classes"]), info["n"] // info["classes"])
    split = per_class_split(labels, split_seed)
    test_labels = labels[split["test"]]
    rng = np.random.default_rng(1000 + seed)
    pred = test_labels.copy()
    wrong = rng.choice(pred.size, size=errors, replace=False)
    pred[wrong] = (pred[wrong] + 1) % info["classes"]
    score = get("mvc/accuracy@1").score(pred=pred, label=test_labels)
    oparams = {"beta": 1.0, "temperature": 1.0} if objective_params is None else objective_params
    mparams = {
        "name": "mvnncor",
        "hidden": [512, 256],
        "z_dim": 64,
        "bottleneck": objective != "none",
        "view_dims": info["dims"],
        "num_classes": info["classes"],
    }
    mparams.pop("name")
    mparams.update(model_params or {})
    config = {
        "run": {"benchmark": benchmark, "objective": objective, "seed": seed, "root": "",
                "device": "cpu", "threads": 0},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 1e-3, "betas": [0.5, 0.9],
                  "lr_milestones": [30, 60], "lr_gamma": 0.05, "progress": False},
        "data": {"split_seed": split_seed, "fractions": [0.7, 0.2, 0.1], "standardize": True},
        "objective": dict(oparams),
        "benchmark": {},
        "model": dict(mparams),
    }  # fmt: skip
    fields = score.record_fields()
    record = {
        "created": created,
        "benchmark": {
            "name": benchmark,
            "version": 1,
            "data_sha256": HAND_MAT_SHA256 if benchmark == "hand" else _sha([benchmark, "data"]),
            "split_id": f"mvc-70/20/10-seed{split_seed}",
            "split_sha256": _sha(split),
            "trial": None,
        },
        "protocol": protocol,
        "objective": {
            "name": objective,
            "version": 1,
            "params": dict(oparams),
            "distribution": "mv2d-bench",
            "distribution_version": "0.1.0",
        },
        "model": {"name": "mvnncor", "params": mparams, "param_count": 1_234_567},
        "config": config,
        "seed": seed,
        "metrics": {**fields["metrics"], "val_accuracy": 99.0, "best_epoch": 141},
        "per_trial": fields["per_trial"],
        "cost": {"train_seconds": 61.5 + seed, "eval_seconds": 0.8, "steps_per_second": 410.2},
        "environment": {
            "package_version": "0.1.0",
            "git_revision": "0123456789abcdef0123456789abcdef01234567",
            "torch": "2.14.1",
            "python": "3.11.2",
            "device": "cpu",
        },
    }
    if artifacts:
        record["artifacts"] = dict(artifacts)
    return record


def accuracy_of(benchmark: str, errors: int) -> float:
    """The accuracy :func:`mvc_record` gives for ``errors`` mistakes on ``benchmark``'s test set."""
    info = MVC_SETS[benchmark]
    labels = np.repeat(np.arange(info["classes"]), info["n"] // info["classes"])
    n_test = len(per_class_split(labels, 0)["test"])
    return 100.0 * (n_test - errors) / n_test


def record_with(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``record`` with dotted-path ``changes`` (``benchmark__trial=3`` sets
    ``record["benchmark"]["trial"]``), its ``run_id`` recomputed so that only the change differs."""
    from mv2d_bench.leaderboards.records import content_id

    out = json.loads(json.dumps(record))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = out
        for p in parents:
            node = node[p]
        if value is _DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    if "schema_version" not in changes:
        out.setdefault("schema_version", 1)
    if "run_id" not in changes:
        out["run_id"] = content_id(out)
    return out


_DELETE = object()
DELETE = _DELETE
"""Pass as a value to :func:`record_with` to remove the field."""


@contextmanager
def installed_protocol(cls: type, distribution: str = "test-plugin", version: str = "0"):
    """Register protocol class ``cls`` under ``cls.id`` for the duration of the block, as an
    installed plugin distribution would (the registry's entry, not a real distribution)."""
    from mv2d_bench.registry import Entry, registry

    reg = registry("protocols")
    entries = reg._scan()
    old = entries.get(cls.id)
    value = f"{cls.__module__}:{cls.__qualname__}"
    entries[cls.id] = Entry(
        cls.id, reg.group, value, distribution, version, [], _obj=cls, _loaded=True
    )
    try:
        yield cls
    finally:
        if old is None:
            entries.pop(cls.id, None)
        else:
            entries[cls.id] = old


def write_rand_perm_cam(root, out=None, seed: int = 0, trials: int = 10):
    """Write a ``rand_perm_cam.mat`` in the official layout (MATLAB v5: a 6 x 1 cell of
    cameras, each a 1 x N cell of ``trials x n`` matrices of 1-based image positions, empty
    where a camera has no folder for an identity) for the SYSU-MM01 tree under ``root``; by
    default into ``root/exp/rand_perm_cam.mat``. Returns the 0-based permutations as
    ``{cam: {id: (trials, n)}}``."""
    import os
    from pathlib import Path

    import scipy.io

    root = Path(root)
    out = Path(out) if out else root / "exp" / "rand_perm_cam.mat"
    rng = np.random.default_rng(seed)
    ids = sorted(
        {int(d.name) for c in range(1, 7) if (root / f"cam{c}").is_dir()
         for d in (root / f"cam{c}").iterdir() if d.name.isdigit()}
    )  # fmt: skip
    n_ids = max(ids) if ids else 0
    cams = np.empty((6, 1), dtype=object)
    perms: dict[int, dict[int, np.ndarray]] = {c: {} for c in range(1, 7)}
    for c in range(1, 7):
        people = np.empty((1, n_ids), dtype=object)
        for p in range(1, n_ids + 1):
            folder = root / f"cam{c}" / f"{p:04d}"
            n = len(os.listdir(folder)) if folder.is_dir() else 0
            if n:
                arr = np.stack([rng.permutation(n) for _ in range(trials)])
                perms[c][p] = arr
                people[0, p - 1] = (arr + 1).astype(float)
            else:
                people[0, p - 1] = np.zeros((0, 0))
        cams[c - 1, 0] = people
    out.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(out, {"rand_perm_cam": cams})
    return perms
