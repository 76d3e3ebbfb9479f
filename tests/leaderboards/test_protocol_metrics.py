"""Every protocol's streaming metric (``Protocol.metric()``, a torchmetrics Metric): fed in random
batch sizes, in shuffled order, with padded duplicates, it equals the whole-split score and the
protocol's engine on the concatenated arrays exactly; and the one best-epoch rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchmetrics

from mv2d_bench.leaderboards.protocols import Metric, Protocol, get
from mv2d_bench.registry import registry

PROTOCOL_IDS = [e.name for e in registry("protocols").entries()]


def mvc_arrays(rng: np.random.Generator, n: int = 101) -> dict[str, np.ndarray]:
    label = rng.integers(0, 5, n)
    logits = rng.normal(size=(n, 5)).astype(np.float32)
    logits[np.arange(n), label] += rng.normal(0.5, 1.0, n).astype(np.float32)
    return {"pred": logits, "label": label}


def reid_arrays(proto: Protocol, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Query / gallery sets in the protocol's cameras; coarse integer features make many
    distance ties, so the result depends on the gallery order that the metric must restore."""
    if proto.benchmark == "regdb":
        qcams, gcams = [proto.query_cam], [proto.gallery_cam]
    else:
        qcams, gcams = [3, 6], [1, 2, 4, 5]
    ids = np.arange(1, 8)
    q_ids = np.repeat(ids, 3)
    g_ids = np.repeat(ids, 2 * len(gcams))
    out = {
        "query_feat": rng.integers(0, 3, (q_ids.size, 4)).astype(np.float32),
        "query_ids": q_ids,
        "query_cams": rng.choice(qcams, q_ids.size),
        "gallery_feat": rng.integers(0, 3, (g_ids.size, 4)).astype(np.float32),
        "gallery_ids": g_ids,
        "gallery_cams": np.tile(np.repeat(gcams, 2), ids.size),
    }
    if "gallery_index" in getattr(proto, "optional_npz_keys", {}):
        out["gallery_index"] = np.tile([0, 1], g_ids.size // 2)
    return out


def protocol(pid: str) -> Protocol:
    """The registered protocol; SYSU-MM01's official ids (@2) with permutations of the test
    galleries below (two images per identity and camera) given in memory."""
    proto = get(pid)
    if getattr(proto, "draw", "") == "official":
        rng = np.random.default_rng(7)
        perms = {c: {i: np.stack([rng.permutation(2) for _ in range(10)]) for i in range(1, 8)}
                 for c in (1, 2, 4, 5)}  # fmt: skip
        proto = type(proto)(rand_perm_cam=perms)
    return proto


def seg_arrays(proto: Protocol, rng: np.random.Generator, n: int = 101) -> dict[str, np.ndarray]:
    """Point labels 0..K-1 (0 = ignore), predictions lowest_pred..K-1, half of them right;
    the camera-only protocols also get a visibility mask."""
    k = proto.num_classes
    label = rng.integers(0, k, n).astype(np.uint8)
    pred = rng.integers(proto.lowest_pred, k, n)
    right = (rng.random(n) < 0.5) & (label >= proto.lowest_pred)
    pred[right] = label[right]
    out = {"pred": pred, "label": label}
    if proto.fov:
        out["visible"] = rng.random(n) < 0.4
    return out


def split_arrays(proto: Protocol, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if proto.benchmark == "mvc":
        return mvc_arrays(rng)
    if proto.benchmark in ("sysu-mm01", "regdb"):
        return reid_arrays(proto, rng)
    if proto.benchmark in ("nuscenes-lidarseg", "semantickitti"):
        return seg_arrays(proto, rng)
    pytest.fail(f"no test data for protocol {proto.id}: add a factory to {__file__}")


def groups(proto: Protocol, arrays: dict) -> dict[str, list[str]]:
    """Item groups (query, gallery, ...) and their keys; one group for sum-state protocols."""
    if not proto.dataset_index_keys:
        return {"": list(arrays)}
    return {g: [k for k in arrays if k.startswith(f"{g}_")] for g in proto.dataset_index_keys}


def random_batches(proto, arrays, rng, shuffle=False, repeat=0, index=True):
    """update() keyword dicts: random batch sizes 1..9 per group, the groups interleaved;
    ``shuffle`` permutes items, ``repeat`` feeds that many random items a second time."""
    batches = []
    for group, keys in groups(proto, arrays).items():
        n = len(arrays[keys[0]])
        order = rng.permutation(n) if shuffle else np.arange(n)
        if repeat:
            order = np.concatenate([order, rng.choice(n, repeat)])
        start = 0
        while start < order.size:
            rows = order[start : start + int(rng.integers(1, 10))]
            start += rows.size
            batch = {k: arrays[k][rows] for k in keys}
            if group and index:
                batch[proto.dataset_index_keys[group]] = rows
            batches.append(batch)
    rng.shuffle(batches) if (shuffle or repeat) else None
    return batches


def stream(proto, batches, metric=None):
    metric = metric if metric is not None else proto.metric()
    for b in batches:
        metric.update(**b)
    return metric.compute()


@pytest.mark.parametrize("pid", PROTOCOL_IDS)
def test_metric_is_a_torchmetrics_metric_with_declared_sync(pid):
    proto = get(pid)
    metric = proto.metric()
    assert isinstance(metric, torchmetrics.Metric) and metric is not proto.metric()
    assert metric._reductions, "no add_state: nothing would be synced across processes"
    assert isinstance(proto.metric(proto.primary), Metric)  # descriptor lookup still works
    assert proto.metric(proto.primary) == proto.metric_spec(proto.primary)


@pytest.mark.parametrize("pid", PROTOCOL_IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_in_random_batches_equals_the_whole_split_exactly(pid, seed):
    proto = protocol(pid)
    arrays = split_arrays(proto, seed)
    whole = proto.score(**arrays)
    rng = np.random.default_rng(100 + seed)
    in_order = stream(proto, random_batches(proto, arrays, rng, index=False))
    shuffled = stream(proto, random_batches(proto, arrays, rng, shuffle=True))
    results = [in_order, shuffled]
    if proto.dataset_index_keys:  # cat states drop padded duplicates (sum states cannot)
        results.append(stream(proto, random_batches(proto, arrays, rng, True, repeat=5)))
    for got in results:
        assert got.metrics == whole.metrics and got.per_trial == whole.per_trial
    if proto.dataset_index_keys:  # the protocol's own engine, no metric machinery
        assert proto.score_split(**arrays).metrics == whole.metrics
    elif proto.benchmark == "mvc":
        expect = 100.0 * np.mean(arrays["pred"].argmax(1) == arrays["label"])
        assert whole.metrics["accuracy"] == pytest.approx(expect, abs=1e-12)
    else:  # segmentation: the protocol's IoU rule on a confusion matrix counted here
        keep = arrays.get("visible", np.ones(len(arrays["label"]), bool))
        conf = np.zeros((proto.num_classes,) * 2, np.int64)
        np.add.at(conf, (arrays["label"][keep], arrays["pred"][keep]), 1)
        conf[0] = 0
        assert whole.metrics == proto.score_confusion(conf).metrics
    # tensors in, same numbers out; a reset metric starts from nothing
    metric = proto.metric()
    stream(proto, random_batches(proto, arrays, rng, shuffle=True), metric)
    metric.reset()
    tensors = [{k: torch.from_numpy(v) for k, v in b.items()} for b in
               random_batches(proto, arrays, rng, shuffle=True)]  # fmt: skip
    assert stream(proto, tensors, metric).metrics == whole.metrics


@pytest.mark.parametrize("pid", [p for p in PROTOCOL_IDS if get(p).dataset_index_keys])
def test_cat_state_metric_refuses_inconsistent_items(pid):
    proto = protocol(pid)
    arrays = split_arrays(proto, 0)
    batches = random_batches(proto, arrays, np.random.default_rng(0))
    # an item given twice with different features
    dup = next(b for b in batches if "gallery_feat" in b)
    bad = {k: v[:1].copy() for k, v in dup.items()}
    bad["gallery_feat"] += 1.0
    with pytest.raises(ValueError, match="given twice .* different values"):
        stream(proto, [*batches, bad])
    # the dataset index for some batches only
    no_index = {k: v for k, v in dup.items() if k != "gallery_dataset_index"}
    with pytest.raises(ValueError, match="gallery_dataset_index: given for some gallery"):
        stream(proto, [*batches, no_index])
    # a group without its keys
    with pytest.raises(TypeError, match="a query batch needs"):
        proto.metric().update(query_feat=arrays["query_feat"])
    with pytest.raises(ValueError, match="no query items"):
        stream(proto, [b for b in batches if "gallery_feat" in b])


def test_accuracy_counts_items_on_the_device_of_the_inputs():
    proto = get("mvc/accuracy@1")
    metric = proto.metric()
    metric.update(pred=torch.tensor([[0.0, 1.0], [2.0, 1.0]]), label=torch.tensor([1, 1]))
    metric.update(pred=torch.tensor([1, 0, 0]), label=torch.tensor([1, 0, 1]))
    assert metric.compute().metrics == {"accuracy": 60.0}
    metric.update(pred=torch.tensor([[float("nan"), 0.0]]), label=torch.tensor([0]))
    metric._computed = None
    with pytest.raises(ValueError, match="NaN or inf"):
        metric.compute()
    with pytest.raises(ValueError, match="no test items"), pytest.warns(UserWarning):
        proto.metric().compute()


class _MinLoss(Protocol):
    id = "test/loss@1"
    metrics = (Metric("loss", "min", 0.0, 10.0, ""),)
    primary = "loss"


def test_best_epoch_direction_ties_and_unvalidated_epochs():
    mvc = get("mvc/accuracy@1")
    assert mvc.best_epoch([90.0, 97.5, 96.0, 97.5]) == 1  # earliest of the tied maxima
    assert type(mvc).best_epoch([None, 80.0, None, 80.0, 79.0]) == 1  # None: not validated
    assert _MinLoss.best_epoch([3.0, 1.0, 2.0, 1.0]) == 1  # direction "min", earliest tie
    assert get("regdb/visible-to-thermal@1").best_epoch([10.0, 30.0, 30.0]) == 1
    for bad in ([], [None], [1.0, float("nan")], [1.0, True]):
        with pytest.raises(ValueError):
            mvc.best_epoch(bad)
