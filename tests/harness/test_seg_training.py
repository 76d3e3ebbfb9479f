"""The segmentation task end to end on CPU: one epoch on tiny trees written around the real scans
(both 3D backbones), a run record that ``leaderboard validate`` accepts, the in-run score equal to
``score`` of the written submission, repeatable batches, and the task's configuration rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mv2d_bench.cli import main
from mv2d_bench.config import load_config
from mv2d_bench.harness.runner import build_record, make_task
from mv2d_bench.harness.seeding import generator
from mv2d_bench.harness.trainer import Trainer
from mv2d_bench.leaderboards.records import write_record

pytest.importorskip("PIL", reason="camera images are read with Pillow")

TINY = [
    "model.encoder=[4,4,8,8]",
    "model.decoder=[8,8,4,4]",
    "model.stem=4",
    "model.z_dim=4",
    "model.fusion_width=4",
    "model.image_width=4",
    "model.range_width=256",
    "train.epochs=1",
    "train.batch_size=2",
    "train.progress=false",
    "run.threads=1",
]


@pytest.fixture(scope="module")
def kitti(tmp_path_factory, shared_data):
    from mv2d_bench.loaders.seg_trees import shared_semantickitti_tree

    root = tmp_path_factory.mktemp("kitti")
    # four subsampled copies of the real scan for training, two for validation
    scans = {"00": [300, 301, 302, 303], "08": [250, 251]}
    return shared_semantickitti_tree(root, shared_data, scans)  # 1241 x 376 images


def kitti_config(root, *extra):
    return load_config(
        overrides=[
            "run.benchmark=semantickitti",
            f"run.root={root}",
            "benchmark.train_sequences=00",
            "model.image_size=[48,160]",
            "model.range_height=16",
            *TINY,
            *extra,
        ]
    )


def train(config, out):
    task = make_task(config)
    trainer = Trainer(task, config, log_path=out / "logs" / "run.jsonl")
    result = trainer.fit()
    path = write_record(out, build_record(config, task, result, "logs/run.jsonl"))
    return task, trainer, result, json.loads(path.read_text())


def needs_backbone(backbone: str) -> None:
    pytest.importorskip("torchvision", reason="the 2D branch needs torchvision")
    if backbone == "spconv":
        pytest.importorskip("spconv.pytorch", reason="spconv (the seg extra) is not installed")


@pytest.mark.parametrize("backbone", ["spconv", "range"])
def test_one_epoch_writes_a_valid_record_and_scores_its_submission(kitti, tmp_path, backbone):
    needs_backbone(backbone)
    config = kitti_config(kitti, f"model.backbone_3d={backbone}", "run.objective=mv2d")
    task, trainer, result, record = train(config, tmp_path / "runs")
    assert main(["leaderboard", "validate", str(tmp_path / "runs")]) == 0
    assert record["protocol"] == "semantickitti/val@1"
    assert record["benchmark"]["split_id"] == "semantickitti/train:00->semantickitti/val:08"
    assert record["model"]["name"] == "lidar-rgb-seg"
    assert record["model"]["params"]["backbone_3d"] == backbone
    assert set(record["objective"]["params"]) >= {"temperature", "weight"}
    assert 0.0 <= record["metrics"]["miou"] <= 100.0
    assert record["per_trial"] == [{"trial": 1, "metrics": result.test_metrics}]
    losses = result.history[0]["loss"]
    assert {"ce", "focal", "lovasz", "obj/sufficiency", "obj/consistency"} <= set(losses)
    # the trained model's predictions, written as a submission and scored as a user would
    assert task.write_predictions(trainer.model, tmp_path / "sub") == 2
    assert sorted(p.name for p in (tmp_path / "sub/sequences/08/predictions").iterdir()) == [
        "000000.label", "000001.label"
    ]  # fmt: skip
    score = task.protocol.score_folder(str(tmp_path / "sub"), str(kitti))
    assert score.metrics == result.test_metrics


def test_nuscenes_six_cameras_vcd_on_the_camera_only_protocol(tmp_path, shared_data):
    pytest.importorskip("nuscenes", reason="nuscenes-devkit (the seg extra) is not installed")
    needs_backbone("range")
    from mv2d_bench.loaders.seg_trees import shared_nuscenes_tree

    root = shared_nuscenes_tree(tmp_path / "nuscenes", shared_data, stride=60)
    config = load_config(
        overrides=[
            "run.benchmark=nuscenes-lidarseg",
            f"run.root={root}",
            "benchmark.version=v1.0-mini",
            "run.objective=vcd",
            "model.backbone_3d=range",
            "model.image_size=[36,64]",
            "seg.protocol=nuscenes-lidarseg/val-fov@1",
            *TINY,
            "train.batch_size=4",
        ]
    )
    task, trainer, result, record = train(config, tmp_path / "runs")
    assert main(["leaderboard", "validate", str(tmp_path / "runs")]) == 0
    assert record["protocol"] == "nuscenes-lidarseg/val-fov@1"
    board_file = tmp_path / "board.json"
    assert main(["leaderboard", "build", str(tmp_path / "runs"), "-o", str(board_file)]) == 0
    (board,) = json.loads(board_file.read_text())["boards"]
    assert any("not comparable with nuscenes-lidarseg/val@1" in n for n in board["notes"])
    assert record["benchmark"]["split_id"].endswith(
        "/mini_train->nuscenes-lidarseg/v1.0-mini/mini_val"
    )
    assert record["model"]["params"]["cameras"][0] == "CAM_FRONT"
    assert "obj/vcd" in result.history[0]["loss"]
    assert "iou_bus" not in result.test_metrics  # absent from labels and predictions: skipped
    task.write_predictions(trainer.model, tmp_path / "sub")
    score = task.protocol.score_folder(str(tmp_path / "sub"), str(root))
    assert score.metrics == result.test_metrics


def test_lidar_only_range_network_runs_without_spconv_or_torchvision(kitti, tmp_path):
    config = kitti_config(kitti, "model.backbone_3d=range", "model.image_branch=false",
                          "run.objective=vsd")  # fmt: skip
    _, _, result, record = train(config, tmp_path / "runs")
    assert record["model"]["params"]["n_views"] == 1
    assert "obj/vsd" in result.history[0]["loss"]
    assert main(["leaderboard", "validate", str(tmp_path / "runs")]) == 0


def test_training_batches_are_a_function_of_the_generator(kitti):
    task = make_task(kitti_config(kitti, "model.backbone_3d=range", "model.image_branch=false"))
    task.setup()
    first = list(task.train_batches(0, generator(0, "batches")))
    again = list(task.train_batches(0, generator(0, "batches")))
    other = list(task.train_batches(0, generator(1, "batches")))
    assert len(first) == 2 and [b.n_scans for b in first] == [2, 2]
    for a, b in zip(first, again, strict=True):
        assert a.ids == b.ids and torch.equal(a.points, b.points)
    assert any(not torch.equal(a.points, b.points) for a, b in zip(first, other, strict=True))
    # augmentation rotates, flips and scales the points; the labels stay with them
    from mv2d_bench.harness.seg_batches import SegScans

    raw = SegScans(task.benchmark, task.train_refs, image_size=None, need_cameras=False)[(0, 0)]
    aug = task.train_set[(0, 123)]
    assert np.array_equal(aug["labels"], raw["labels"])
    norm = np.linalg.norm
    ratio = norm(aug["points"][:, :3], axis=1) / norm(raw["points"][:, :3], axis=1)
    assert np.allclose(ratio, ratio[0], rtol=1e-5) and 0.95 <= ratio[0] <= 1.05
    assert not np.allclose(aug["points"][:, :2], raw["points"][:, :2])
    assert np.array_equal(aug["points"][:, 3], raw["points"][:, 3])  # intensity untouched


def test_image_flip_keeps_each_point_on_its_pixel(kitti):
    """An augmented (flipped) image sampled at the augmented grid gives the original pixel."""
    from mv2d_bench.harness.seg_batches import SegScans

    task = make_task(kitti_config(kitti))
    task.setup()
    ref = task.eval_refs[0]
    size = (376, 1241)  # the written PNG itself, so the grid lands on exact pixels
    plain = SegScans(task.benchmark, [ref], image_size=size)[(0, 0)]
    for seed in range(6):
        aug = SegScans(task.benchmark, [ref], image_size=size, augment=True)[(0, seed)]
        if np.array_equal(aug["images"], plain["images"]):
            continue
        seen = aug["seen"]
        assert seen.any()
        img_a = torch.from_numpy(aug["images"]).permute(0, 3, 1, 2).double()
        img_p = torch.from_numpy(plain["images"]).permute(0, 3, 1, 2).double()
        grid_a = torch.from_numpy(aug["grid"][seen]).double().view(1, 1, -1, 2)
        grid_p = torch.from_numpy(plain["grid"][seen]).double().view(1, 1, -1, 2)
        sample = torch.nn.functional.grid_sample
        a = sample(img_a, grid_a, align_corners=True)
        p = sample(img_p, grid_p, align_corners=True)
        torch.testing.assert_close(a, p, rtol=0, atol=1e-9)
        break
    else:  # pragma: no cover - six seeds without one flip: probability 1/64
        pytest.fail("no seed flipped the image")


def test_configuration_rules(kitti):
    with pytest.raises(ValueError, match="seg.fov_only.*use semantickitti/val-fov@1"):
        make_task(kitti_config(kitti, "seg.fov_only=true")).setup()
    with pytest.raises(ValueError, match="'seg.protocol' 'mvc/accuracy@1' is not a protocol"):
        make_task(kitti_config(kitti, "seg.protocol=mvc/accuracy@1")).setup()
    with pytest.raises(ValueError, match="seg.camera_merge"):
        make_task(kitti_config(kitti, "seg.camera_merge=middle")).setup()
    task = make_task(
        kitti_config(kitti, "seg.fov_only=true", "seg.protocol=semantickitti/val-fov@1")
    )
    task.setup()
    batch = next(iter(task.eval_batches("test")))
    assert bool(batch.seen.all())  # only camera-seen points are left
    with pytest.raises(ValueError, match="needs every point"):
        task.write_predictions(torch.nn.Linear(1, 1), "unused")
