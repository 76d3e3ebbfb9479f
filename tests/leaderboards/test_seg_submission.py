"""Scoring submission folders: nuScenes against the devkit's own LidarSegEval on a v1.0-mini tree
written around the real files; SemanticKITTI against the np_ioueval definition; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mv2d_bench import loaders
from mv2d_bench.cli import main
from mv2d_bench.leaderboards import protocols
from mv2d_bench.leaderboards.seg_submission import (
    write_nuscenes_predictions,
    write_semantickitti_predictions,
)


@pytest.fixture(scope="module")
def nusc_tree(tmp_path_factory, shared_data):
    pytest.importorskip("nuscenes", reason="nuscenes-devkit (the seg extra) is not installed")
    from mv2d_bench.loaders.seg_trees import shared_nuscenes_tree

    return shared_nuscenes_tree(tmp_path_factory.mktemp("nusc"), shared_data)


def nuscenes_submission(tree, folder, seed=0):
    """Predictions 1..16 for every mini_val keyframe; no point is ever predicted class 3."""
    bench = loaders.create("nuscenes-lidarseg", root=tree, version="v1.0-mini")
    g = np.random.default_rng(seed)
    for ref in bench.scans("val"):
        labels = bench.read_scan(ref, cameras=False).labels
        pred = np.where(g.random(len(labels)) < 0.4, labels, g.integers(1, 17, len(labels)))
        pred[(pred == 0) | (pred == 3)] = 7
        write_nuscenes_predictions(folder, "mini_val", ref.id, pred)
    return bench


def test_nuscenes_folder_equals_the_devkit_lidarsegeval(nusc_tree, tmp_path):
    from nuscenes.eval.lidarseg.evaluate import LidarSegEval

    bench = nuscenes_submission(nusc_tree, tmp_path / "sub")
    proto = protocols.get("nuscenes-lidarseg/val@1")
    ours = proto.score_folder(str(tmp_path / "sub"), str(nusc_tree))
    oracle = LidarSegEval(bench.nusc, str(tmp_path / "sub"), eval_set="mini_val").evaluate()
    assert ours.metrics["miou"] == 100.0 * oracle["miou"]
    for name, iou in oracle["iou_per_class"].items():
        if name == "ignore":
            continue
        if np.isnan(iou):
            assert f"iou_{name}" not in ours.metrics
        else:
            assert ours.metrics[f"iou_{name}"] == 100.0 * iou
    assert "iou_bus" not in ours.metrics  # never predicted, never labelled: skipped (nanmean)


def test_nuscenes_fov_folder_scores_camera_visible_points(nusc_tree, tmp_path):
    bench = nuscenes_submission(nusc_tree, tmp_path / "sub", seed=1)
    fov = protocols.get("nuscenes-lidarseg/val-fov@1").score_folder(
        str(tmp_path / "sub"), str(nusc_tree)
    )
    metric = protocols.get("nuscenes-lidarseg/val@1").metric()
    for ref in bench.scans("val"):
        scan = bench.read_scan(ref)
        pred = np.fromfile(tmp_path / "sub/lidarseg/mini_val" / f"{ref.id}_lidarseg.bin", np.uint8)
        metric.update(pred=pred[scan.seen], label=scan.labels[scan.seen])
    assert fov.metrics == metric.compute().metrics


def test_nuscenes_folder_errors_name_the_file(nusc_tree, tmp_path):
    bench = nuscenes_submission(nusc_tree, tmp_path / "sub")
    proto = protocols.get("nuscenes-lidarseg/val@1")
    ref = bench.scans("val")[0]
    path = tmp_path / "sub/lidarseg/mini_val" / f"{ref.id}_lidarseg.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"_lidarseg\.bin: 39 predictions for 40 points"):
        proto.score_folder(str(tmp_path / "sub"), str(nusc_tree))
    path.write_bytes(bytes(40))  # zeros: the devkit asserts predictions are 1..16
    with pytest.raises(ValueError, match=r"_lidarseg\.bin: pred: class ids must be in 1\.\.16"):
        proto.score_folder(str(tmp_path / "sub"), str(nusc_tree))
    path.unlink()
    with pytest.raises(ValueError, match=r"_lidarseg\.bin: prediction file not found"):
        proto.score_folder(str(tmp_path / "sub"), str(nusc_tree))
    nuscenes_submission(nusc_tree, tmp_path / "sub")
    (path.parent / "deadbeef_lidarseg.bin").write_bytes(b"\x01")
    with pytest.raises(ValueError, match="deadbeef_lidarseg.bin: not a scan of the scored split"):
        proto.score_folder(str(tmp_path / "sub"), str(nusc_tree))


@pytest.fixture(scope="module")
def kitti_tree(tmp_path_factory, shared_data):
    pytest.importorskip("PIL")
    from mv2d_bench.loaders.seg_trees import shared_semantickitti_tree

    root = tmp_path_factory.mktemp("kitti")
    return shared_semantickitti_tree(root, shared_data, {"08": [3, 5]})


def test_semantickitti_folder_is_raw_ids_through_learning_map(kitti_tree, tmp_path):
    bench = loaders.create("semantickitti", root=kitti_tree)
    g = np.random.default_rng(0)
    labels, preds = [], []
    for ref in bench.scans("val"):
        lab = bench.read_scan(ref, cameras=False).labels
        pred = np.where(g.random(len(lab)) < 0.5, lab, g.integers(0, 20, len(lab)))
        write_semantickitti_predictions(tmp_path / "sub", ref.id, pred)
        labels.append(lab)
        preds.append(pred)
    raw = np.fromfile(tmp_path / "sub/sequences/08/predictions/000000.label", np.uint32)
    assert set(np.unique(raw)) <= {0, 10, 11, 15, 18, 20, 30, 31, 32, 40, 44, 48, 49, 50, 51,
                                   70, 71, 72, 80, 81}  # fmt: skip
    proto = protocols.get("semantickitti/val@1")
    got = proto.score_folder(str(tmp_path / "sub"), str(kitti_tree))
    label, pred = np.concatenate(labels), np.concatenate(preds)
    ious = []
    for c in range(1, 20):
        tp = np.sum((label == c) & (pred == c))
        fp = np.sum((label != 0) & (label != c) & (pred == c))
        fn = np.sum((label == c) & (pred != c))
        ious.append(tp / (tp + fp + fn + 1e-15))
    assert got.metrics["miou"] == pytest.approx(100 * np.mean(ious), rel=1e-12)
    # an unknown raw id in a submission is refused, naming the file
    raw[0] = 7
    raw.tofile(tmp_path / "sub/sequences/08/predictions/000000.label")
    with pytest.raises(ValueError, match=r"000000\.label: unknown raw semantic id\(s\) 7"):
        proto.score_folder(str(tmp_path / "sub"), str(kitti_tree))


def test_score_cli_reads_arrays_and_folders(kitti_tree, tmp_path, capsys):
    bench = loaders.create("semantickitti", root=kitti_tree)
    labels = [bench.read_scan(r, cameras=False).labels for r in bench.scans("val")]
    for ref, lab in zip(bench.scans("val"), labels, strict=True):
        write_semantickitti_predictions(tmp_path / "sub", ref.id, lab)  # perfect predictions
    assert main(["score", "semantickitti/val@1", "--predictions", str(tmp_path / "sub"),
                 "--root", str(kitti_tree), "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    present = sorted(set(np.concatenate(labels).tolist()) - {0})
    assert out["metrics"]["miou"] == pytest.approx(100 * len(present) / 19)
    label = np.concatenate(labels)
    np.savez(tmp_path / "p.npz", pred=label, label=label)
    assert main(["score", "semantickitti/val@1", "--predictions", str(tmp_path / "p.npz"),
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["metrics"] == out["metrics"]
    assert main(["score", "mvc/accuracy@1", "--predictions", str(tmp_path / "sub")]) == 2
    assert "is a folder; protocol mvc/accuracy@1 scores a .npz" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["score", "semantickitti/val@1", "--predictions", str(empty), "--root",
                 str(kitti_tree)])  # fmt: skip
    assert code == 2
    assert "000000.label: prediction file not found" in capsys.readouterr().err
