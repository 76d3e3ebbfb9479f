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


def mvc_v2_record(
    benchmark: str = "hand",
    objective: str = "mv2d",
    *,
    split_seed: int = 300,
    seed: int = 0,
    errors: int = 1,
    last_errors: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """A run record under ``mvc/accuracy@2``: MvNNcor's split with ``split_seed`` (one of the
    benchmark's data-card seeds for a valid record), ``errors`` test mistakes at the best
    validation epoch and ``last_errors`` (default: the same) at the last epoch."""
    rec = mvc_record(
        benchmark, objective, seed=seed, errors=errors, split_seed=split_seed,
        protocol="mvc/accuracy@2", **kwargs,
    )  # fmt: skip
    rec["benchmark"]["split_id"] = f"mvnncor/seed-{split_seed}"
    rec["config"]["data"]["split"] = "mvnncor"
    last = accuracy_of(benchmark, errors if last_errors is None else last_errors, split_seed)
    rec["metrics"]["last_epoch_accuracy"] = last
    for trial in rec["per_trial"]:
        trial["metrics"]["last_epoch_accuracy"] = last
    return rec


def accuracy_of(benchmark: str, errors: int, split_seed: int = 0) -> float:
    """The accuracy :func:`mvc_record` gives for ``errors`` mistakes on ``benchmark``'s test set."""
    info = MVC_SETS[benchmark]
    labels = np.repeat(np.arange(info["classes"]), info["n"] // info["classes"])
    n_test = len(per_class_split(labels, split_seed)["test"])
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
    """Write a ``rand_perm_cam.mat`` in the official layout for the SYSU-MM01 tree under
    ``root`` (the folder sizes of ``cam<c>/<id:04d>``), by default into
    ``root/exp/rand_perm_cam.mat``. Returns the 0-based permutations (see
    :func:`write_rand_perm_cam_sizes`)."""
    import os
    from pathlib import Path

    root = Path(root)
    sizes = {}
    for c in range(1, 7):
        cam = root / f"cam{c}"
        if not cam.is_dir():
            continue
        for d in cam.iterdir():
            if d.is_dir() and d.name.isdigit() and os.listdir(d):
                sizes[(c, int(d.name))] = len(os.listdir(d))
    out = Path(out) if out else root / "exp" / "rand_perm_cam.mat"
    return write_rand_perm_cam_sizes(sizes, out, seed, trials)


def write_rand_perm_cam_sizes(sizes, out, seed: int = 0, trials: int = 10):
    """Write a ``rand_perm_cam.mat`` in the official layout (MATLAB v5: a 6 x 1 cell of cameras,
    each a 1 x N cell of ``trials x n`` matrices of 1-based image positions, empty where a camera
    has no images of an identity) for ``sizes`` = ``{(cam, id): n}``, with random permutations.
    Returns them 0-based as ``{cam: {id: (trials, n)}}``."""
    from pathlib import Path

    import scipy.io

    rng = np.random.default_rng(seed)
    n_ids = max((pid for _, pid in sizes), default=0)
    cams = np.empty((6, 1), dtype=object)
    perms: dict[int, dict[int, np.ndarray]] = {c: {} for c in range(1, 7)}
    for c in range(1, 7):
        people = np.empty((1, n_ids), dtype=object)
        for p in range(1, n_ids + 1):
            n = sizes.get((c, p), 0)
            if n:
                arr = np.stack([rng.permutation(n) for _ in range(trials)])
                perms[c][p] = arr
                people[0, p - 1] = (arr + 1).astype(float)
            else:
                people[0, p - 1] = np.zeros((0, 0))
        cams[c - 1, 0] = people
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(out, {"rand_perm_cam": cams})
    return perms


def reid_arrays(protocol_id: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Small query / candidate-gallery predictions for a ReID protocol (SYSU-MM01: IR queries of
    cams 3 and 6, a gallery of 4 images per identity in each visible camera; RegDB: visible
    queries, thermal gallery or the reverse), noisy enough that the metrics are below 100."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, 13)
    centres = rng.normal(size=(ids.max() + 1, 16))
    if protocol_id.startswith("regdb"):
        v2t = "visible-to-thermal" in protocol_id
        qcam, gcam = (1, 2) if v2t else (2, 1)
        q_ids, g_ids = np.repeat(ids, 3), np.repeat(ids, 3)
        q_cams, g_cams = np.full(q_ids.size, qcam), np.full(g_ids.size, gcam)
        g_index = None
    else:
        q_ids = np.repeat(ids, 4)
        q_cams = np.tile([3, 6], q_ids.size // 2)
        g_ids = np.repeat(ids, 16)
        g_cams = np.tile(np.repeat([1, 2, 4, 5], 4), ids.size)
        g_index = np.tile(np.arange(4), g_ids.size // 4)
    out = {
        "query_feat": centres[q_ids] + 1.5 * rng.normal(size=(q_ids.size, 16)),
        "query_ids": q_ids, "query_cams": q_cams,
        "gallery_feat": centres[g_ids] + 1.5 * rng.normal(size=(g_ids.size, 16)),
        "gallery_ids": g_ids, "gallery_cams": g_cams,
    }  # fmt: skip
    if g_index is not None:
        out["gallery_index"] = g_index
    return out


def reid_record(
    protocol_id: str = "sysu-mm01/all-search/single-shot@2",
    objective: str = "mv2d",
    *,
    seed: int = 0,
    trial: int | None = None,
    rand_perm_cam: str | None = None,
    created: str = "2026-02-01T10:00:00+00:00",
) -> dict[str, Any]:
    """A run record of a ReID run scored by the real protocol on :func:`reid_arrays`
    predictions (seeded by ``seed`` and ``trial``). SYSU-MM01 official ids read the
    permutations from the file ``rand_perm_cam`` (written by
    :func:`write_rand_perm_cam_sizes` for the 4-images-per-group gallery); the record carries
    ``protocol_gallery`` as a run's does."""
    from mv2d_bench.registry import registry

    cls = registry("protocols").load(protocol_id)
    sysu = hasattr(cls, "gallery_info")
    proto = cls(rand_perm_cam_file=rand_perm_cam) if sysu else cls()
    arrays = reid_arrays(protocol_id, seed * 100 + (trial or 0))
    score = proto.score(**arrays)
    benchmark = "sysu-mm01" if sysu else "regdb"
    fields = score.record_fields(trial)
    config = {
        "run": {"benchmark": benchmark, "objective": objective, "seed": seed, "root": "",
                "device": "cpu", "threads": 0},
        "train": {"epochs": 300, "lr": 2.6e-4, "lr_milestones": [200], "lr_gamma": 0.1},
        "objective": {"weight": 2.0},
        "benchmark": {"size": [288, 144]},
        "model": {"backbone": "resnet50", "z_dim": 256},
        "reid": {"protocol": protocol_id, "trial": trial or 0, "third_view": "gray-visible"},
    }  # fmt: skip
    split = f"regdb/trial-{trial}" if trial else "sysu-mm01/train+val"
    record = {
        "created": created,
        "benchmark": {
            "name": benchmark,
            "version": 1,
            "data_sha256": _sha([benchmark, "data"]),
            "split_id": split,
            "split_sha256": _sha([benchmark, split]),
            "trial": trial,
        },
        "protocol": protocol_id,
        "objective": {"name": objective, "version": 1, "params": {"weight": 2.0},
                      "distribution": "mv2d-bench", "distribution_version": "0.1.0"},
        "model": {"name": "reid-three-branch", "params": {"backbone": "resnet50", "z_dim": 256},
                  "param_count": 75_000_000},
        "config": config,
        "seed": seed,
        "metrics": {**fields["metrics"], "best_epoch": 300},
        "per_trial": fields["per_trial"],
        "cost": {"train_seconds": 3600.0, "eval_seconds": 30.0, "steps_per_second": 4.2},
        "environment": {"package_version": "0.1.0",
                        "git_revision": "0123456789abcdef0123456789abcdef01234567",
                        "torch": "2.14.1", "python": "3.11.2", "device": "cuda:0"},
    }  # fmt: skip
    if sysu:
        record["protocol_gallery"] = proto.gallery_info()
    return record
