"""nuScenes-lidarseg through the devkit's tables: a v1.0-mini tree written around the real
files (the scene-0061 keyframe with its six real cameras and calibration, 40 real labelled
points), the projection against the devkit's map_pointcloud_to_image, the class mapper, and
bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("nuscenes", reason="nuscenes-devkit (the seg extra) is not installed")

from mv2d_bench import loaders  # noqa: E402
from mv2d_bench.loaders import nuscenes_classes as nc  # noqa: E402
from mv2d_bench.loaders.base import DataError  # noqa: E402
from mv2d_bench.loaders.seg_trees import shared_nuscenes_tree  # noqa: E402

STATED_PER_CAMERA = {
    "CAM_FRONT": 3053,
    "CAM_FRONT_RIGHT": 3076,
    "CAM_FRONT_LEFT": 3696,
    "CAM_BACK": 4820,
    "CAM_BACK_LEFT": 4089,
    "CAM_BACK_RIGHT": 3369,
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory, shared_data):
    return shared_nuscenes_tree(tmp_path_factory.mktemp("nuscenes"), shared_data)


def open_tree(root):
    return loaders.create("nuscenes-lidarseg", root=root, version="v1.0-mini")


def keyframe(bench):
    (ref,) = [r for r in bench.scans("train") if "scene-0061" in r.points]
    return ref


def test_real_sweep_in_its_six_real_cameras(tree):
    bench = open_tree(tree)
    ref = keyframe(bench)
    scan = bench.read_scan(ref)
    assert scan.points.shape == (34688, 4)
    assert scan.ring.min() == 0 and scan.ring.max() == 31
    assert [c.name for c in ref.cameras] == list(STATED_PER_CAMERA)
    assert scan.image_sizes == ((1600, 900),) * 6
    assert dict(zip(STATED_PER_CAMERA, scan.visible.sum(1).tolist(), strict=True)) == (
        STATED_PER_CAMERA
    )
    assert int(scan.seen.sum()) == 20180


def test_projection_matches_the_devkit_to_0_05_px(tree):
    bench = open_tree(tree)
    ref = keyframe(bench)
    scan = bench.read_scan(ref)
    nusc = bench.nusc
    sample = nusc.get("sample", ref.extra["sample_token"])
    for i, channel in enumerate(bench.cameras):
        points, depth, _ = nusc.explorer.map_pointcloud_to_image(ref.id, sample["data"][channel])
        ours = scan.uv[i][scan.visible[i]]
        assert points.shape[1] == len(ours) == STATED_PER_CAMERA[channel]
        assert np.abs(points[:2].T - ours).max() < 0.05, channel


def test_chain_equals_the_published_lidar2cam(tree, shared_data):
    """Independent of the devkit: sample.json's cam2img @ lidar2cam (mmdetection3d's info)."""
    info = json.loads((shared_data / "nuscenes/sample.json").read_text())
    ref = keyframe(open_tree(tree))
    for cam in ref.cameras:
        c = info["cameras"][cam.name]
        expected = np.array(c["cam2img"]) @ np.array(c["lidar2cam"])[:3]
        np.testing.assert_allclose(np.array(cam.matrix), expected, rtol=0, atol=1e-3)


def test_forty_real_points_through_the_devkit_class_mapper(tree, shared_data):
    from nuscenes.eval.lidarseg.utils import LidarsegClassMapper

    bench = open_tree(tree)
    (ref,) = bench.scans("val")[:1]
    scan = bench.read_scan(ref)
    raw = np.fromfile(ref.labels, dtype=np.uint8)
    assert len(scan) == 40
    assert dict(zip(*np.unique(raw, return_counts=True), strict=True)) == {
        17: 2, 24: 15, 27: 1, 28: 12, 30: 1, 31: 9
    }  # fmt: skip
    mapper = LidarsegClassMapper(bench.nusc)
    assert scan.labels.tolist() == mapper.convert_label(raw).tolist()
    counts = np.bincount(scan.labels, minlength=17)
    # car 2, driveable_surface 15, terrain 1, manmade 12, vegetation 1, ego -> ignore 9
    assert {k: int(v) for k, v in enumerate(counts) if v} == {0: 9, 4: 2, 11: 15, 14: 1, 15: 12,
                                                              16: 1}  # fmt: skip
    coarse = mapper.coarse_name_2_coarse_idx_mapping
    assert {n: i for i, n in enumerate(nc.CLASSES, start=1)} == {
        k: v for k, v in coarse.items() if v != 0
    }
    assert [bench.nusc.lidarseg_idx2name_mapping[i] for i in range(32)] == list(nc.RAW_CLASSES)


def test_splits_come_from_the_devkit(tree):
    from nuscenes.utils.splits import create_splits_scenes

    bench = open_tree(tree)
    splits = create_splits_scenes(verbose=False)
    scene_of = {s["token"]: s["name"] for s in bench.nusc.scene}

    def scenes(split):
        return [
            scene_of[bench.nusc.get("sample", r.extra["sample_token"])["scene_token"]]
            for r in bench.scans(split)
        ]

    assert scenes("train") == splits["mini_train"]
    assert scenes("val") == splits["mini_val"]
    assert bench.split_id("val") == "nuscenes-lidarseg/v1.0-mini/mini_val"
    with pytest.raises(ValueError, match="option 'version' must be one of"):
        loaders.create("nuscenes-lidarseg", root=tree, version="v1.0-test")


@pytest.fixture
def copy(tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    return root


def test_label_file_length_must_match_its_sweep(copy):
    bench = open_tree(copy)
    ref = bench.scans("val")[0]
    with open(ref.labels, "ab") as f:
        f.write(b"\x01")
    with pytest.raises(DataError, match=r"_lidarseg\.bin: 41 labels for 40 points in .*\.pcd\.bin"):
        bench.read_scan(ref)
    assert "sweeps and labels" in {c["name"] for c in bench.verify()["checks"] if not c["ok"]}


def test_unknown_raw_class_is_an_error_naming_the_file(copy):
    bench = open_tree(copy)
    ref = bench.scans("val")[0]
    raw = np.fromfile(ref.labels, dtype=np.uint8)
    raw[3] = 40
    raw.tofile(ref.labels)
    with pytest.raises(DataError, match=r"_lidarseg\.bin: unknown raw lidarseg class id\(s\) \[40"):
        bench.read_scan(ref)


@pytest.mark.parametrize("table", ["lidarseg", "sample_data", "map"])
def test_missing_table_is_an_error_naming_it(copy, table):
    (copy / "v1.0-mini" / f"{table}.json").unlink()
    with pytest.raises(DataError, match=rf"v1\.0-mini/{table}\.json: table missing"):
        open_tree(copy).scans("val")


def test_malformed_table_is_named(copy):
    (copy / "v1.0-mini/sample.json").write_text("{")
    with pytest.raises(DataError, match=r"v1\.0-mini/sample\.json: not a readable JSON table"):
        open_tree(copy).scans("val")


def test_missing_split_scene_and_missing_version(copy):
    scenes = json.loads((copy / "v1.0-mini/scene.json").read_text())
    (copy / "v1.0-mini/scene.json").write_text(
        json.dumps([s for s in scenes if s["name"] != "scene-0916"])
    )
    with pytest.raises(DataError, match="split mini_val lists 1 scene.*scene-0916"):
        open_tree(copy).scans("val")
    with pytest.raises(DataError, match=r"v1\.0-trainval: table folder missing"):
        loaders.create("nuscenes-lidarseg", root=copy).scans("val")


def test_verify_on_the_written_tree(tree):
    report = open_tree(tree).verify()
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["tables"]["ok"] and by_name["sweeps and labels"]["ok"]
    assert by_name["camera images"]["ok"] and "60 images" in by_name["camera images"]["detail"]
    assert not by_name["published keyframe counts"]["ok"]  # 8 + 2 keyframes, not 323 + 81
    quiet = loaders.create("nuscenes-lidarseg", root=tree, version="v1.0-mini", check_counts=False)
    assert quiet.verify()["ok"]
