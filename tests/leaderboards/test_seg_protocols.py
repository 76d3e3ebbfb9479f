"""Segmentation protocols: nuScenes-lidarseg as the devkit's ConfusionMatrix (the oracle),
SemanticKITTI as semantic-kitti-api's np_ioueval definition computed independently here, both
as streaming torchmetrics confusion matrices (batches == whole split; the 3-process sync of
every protocol is tests/distributed/test_metric_sync.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mv2d_bench.leaderboards import protocols
from mv2d_bench.loaders import nuscenes_classes as nc
from mv2d_bench.loaders import semantickitti_classes as kc

NUSC = "nuscenes-lidarseg/val@1"
KITTI = "semantickitti/val@1"


def nuscenes_arrays(n: int, seed: int):
    """Labels 0..16 without classes 3 and 12, predictions 1..16 without 3 (so class 3 is absent
    from both and skipped by nanmean) but with 12 (absent from labels: IoU 0)."""
    g = np.random.default_rng(seed)
    label = g.integers(0, 17, n)
    label[np.isin(label, [3, 12])] = 4
    pred = np.where(g.random(n) < 0.6, label, g.integers(1, 17, n))
    pred[pred == 0] = 5
    pred[pred == 3] = 6
    return pred.astype(np.uint8), label.astype(np.uint8)


def test_nuscenes_matches_the_devkit_confusion_matrix():
    ConfusionMatrix = pytest.importorskip("nuscenes.eval.lidarseg.utils").ConfusionMatrix
    proto = protocols.get(NUSC)
    oracle = ConfusionMatrix(17, ignore_idx=0)
    metric = proto.metric()
    for seed in range(3):
        pred, label = nuscenes_arrays(5000, seed)
        oracle.update(label, pred)
        metric.update(pred=torch.from_numpy(pred), label=torch.from_numpy(label))
    score = metric.compute()
    iou = oracle.get_per_class_iou()
    assert score.metrics["miou"] == 100.0 * oracle.get_mean_iou()
    assert np.isnan(iou[3]) and "iou_bus" not in score.metrics  # class 3 = bus: skipped
    assert score.metrics["iou_other_flat"] == 0.0  # only predicted
    for k, name in enumerate(nc.CLASSES, start=1):
        if not np.isnan(iou[k]):
            assert score.metrics[f"iou_{name}"] == 100.0 * float(iou[k])
    assert len(score.metrics) == 1 + 15
    assert score.per_trial == [score.metrics]


def test_nuscenes_rejects_prediction_zero_like_the_devkit():
    proto = protocols.get(NUSC)
    with pytest.raises(ValueError, match=r"pred: class ids must be in 1\.\.16; found values 0"):
        proto.score(pred=np.array([0, 1, 2]), label=np.array([1, 1, 2]))
    with pytest.raises(ValueError, match=r"label: class ids must be in 0\.\.16"):
        proto.score(pred=np.array([1, 1]), label=np.array([1, 17]))
    with pytest.raises(ValueError, match="integer class ids"):
        proto.score(pred=np.array([1.0, 2.0]), label=np.array([1, 2]))
    with pytest.raises(ValueError, match="pred has 2 points but label has 3"):
        proto.score(pred=np.array([1, 2]), label=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="no point with a ground-truth class"):
        proto.score(pred=np.array([1, 2]), label=np.array([0, 0]))


def kitti_reference(pred: np.ndarray, label: np.ndarray) -> tuple[float, np.ndarray]:
    """semantic-kitti-api's definition, written out class by class."""
    ious = np.zeros(20)
    for c in range(1, 20):
        valid = label != 0
        tp = np.sum((label == c) & (pred == c))
        fp = np.sum(valid & (pred == c) & (label != c))
        fn = np.sum((label == c) & (pred != c))  # includes valid points predicted 0
        ious[c] = tp / (tp + fp + fn + 1e-15)
    return float(ious[1:].mean()), ious


def test_semantickitti_matches_the_ioueval_definition():
    g = np.random.default_rng(1)
    n = 20000
    label = g.integers(0, 20, n)
    label[label == 7] = 9  # class 7 absent from labels ...
    pred = np.where(g.random(n) < 0.5, label, g.integers(0, 20, n))
    pred[pred == 7] = 0  # ... and from predictions: it counts as IoU 0 in the mean
    proto = protocols.get(KITTI)
    score = proto.score(pred=pred, label=label)
    miou, ious = kitti_reference(pred, label)
    assert score.metrics["miou"] == pytest.approx(100.0 * miou, rel=1e-12)
    assert score.metrics["iou_bicyclist"] == 0.0
    for k, name in enumerate(kc.CLASSES, start=1):
        assert score.metrics[f"iou_{name}"] == pytest.approx(100.0 * ious[k], rel=1e-12)
    # a valid point predicted 0 is a miss: predicting 0 everywhere scores 0
    assert proto.score(pred=np.zeros(n, int), label=label).metrics["miou"] == 0.0


def test_semantickitti_mean_differs_from_nanmean_when_a_class_is_absent():
    label = np.array([1, 1, 2, 2, 0])
    pred = np.array([1, 1, 2, 2, 5])
    score = protocols.get(KITTI).score(pred=pred, label=label)
    assert score.metrics["miou"] == pytest.approx(100.0 * 2 / 19, rel=1e-12)


@pytest.mark.parametrize("pid", [NUSC, KITTI])
def test_streaming_equals_whole_split_and_fov_scores_visible_points(pid):
    proto = protocols.get(pid)
    k = proto.num_classes
    g = np.random.default_rng(4)
    label = g.integers(0, k, 9000)
    pred = g.integers(1, k, 9000)
    visible = g.random(9000) < 0.3
    whole = proto.score(pred=pred, label=label)
    metric = proto.metric()
    for chunk in np.array_split(np.arange(9000), 7):
        metric.update(pred=pred[chunk], label=label[chunk])
    assert metric.compute().metrics == whole.metrics
    fov = protocols.get(pid.replace("/val@1", "/val-fov@1"))
    assert fov.fov and "visible" in fov.npz_keys
    got = fov.score(pred=pred, label=label, visible=visible)
    assert got.metrics == proto.score(pred=pred[visible], label=label[visible]).metrics
    with pytest.raises(TypeError, match="missing"):
        fov.score(pred=pred, label=label)


def test_logits_are_reduced_over_the_real_classes():
    proto = protocols.get(NUSC)
    g = np.random.default_rng(2)
    label = g.integers(1, 17, 500)
    logits16 = g.normal(size=(500, 16)).astype(np.float32)
    logits17 = np.concatenate([np.full((500, 1), 99.0, np.float32), logits16], axis=1)
    ids = logits16.argmax(1) + 1
    expected = proto.score(pred=ids, label=label).metrics
    assert proto.score(pred=logits16, label=label).metrics == expected
    assert proto.score(pred=logits17, label=label).metrics == expected  # column 0 never wins
    with pytest.raises(ValueError, match="logits have 5 columns"):
        proto.score(pred=logits16[:, :5], label=label)


def test_confusion_key_is_a_small_integer_and_state_is_a_sum():
    for pid in (NUSC, KITTI):
        metric = protocols.get(pid).metric()
        assert metric.key_dtype == torch.int16
        assert (
            metric._reductions["confmat"] is not None
            and metric._defaults["confmat"].shape == (metric.num_classes,) * 2
        )
        assert metric.confmat.dtype == torch.int64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metric_follows_the_device_of_its_state():
    proto = protocols.get(KITTI)
    pred, label = np.random.default_rng(0).integers(0, 20, (2, 1000))
    metric = proto.metric().to("cuda")
    metric.update(pred=torch.as_tensor(pred).cuda(), label=torch.as_tensor(label).cuda())
    assert metric.confmat.is_cuda
    assert metric.compute().metrics == proto.score(pred=pred, label=label).metrics
