"""Small segmentation trees in exactly the published layouts, for tests and benchmark scripts.

* :func:`write_semantickitti_tree`: ``sequences/NN/{velodyne,labels,image_2}`` and
  ``calib.txt`` from point arrays.
* :func:`write_nuscenes_tree`: a nuScenes tree that ``nuscenes.NuScenes`` loads: all 13 tables
  of ``<version>/`` (``category.json`` with the 32 lidarseg names and their ``index``, a ``map``
  record pointing at a PNG that exists), ``lidarseg.json`` whose tokens are the LIDAR_TOP
  sample_data tokens, ``lidarseg/<version>/<token>_lidarseg.bin``, ``samples/LIDAR_TOP/*.pcd.bin``
  and ``samples/CAM_*/*.jpg``.
* :func:`shared_nuscenes_tree` / :func:`shared_semantickitti_tree` build such trees around the
  real files in ``../shared/data`` (one real nuScenes keyframe with its six real cameras and
  calibration, 40 real labelled nuScenes points, one real SemanticKITTI scan).

Nothing here downloads; the real files are read, never modified.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mv2d_bench.loaders.nuscenes_classes import RAW_CLASSES
from mv2d_bench.loaders.nuscenes_lidarseg import CAMERAS as NUSCENES_CAMERAS
from mv2d_bench.loaders.nuscenes_lidarseg import TABLES as ALL_TABLES

TABLES = ALL_TABLES[:-1]
"""The 13 nuScenes tables (lidarseg.json is written separately)."""


def _token(*parts: Any) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:32]


def write_png(path: Path, width: int, height: int, seed: int = 0) -> None:
    """A deterministic RGB test image (a colour gradient with noise)."""
    from PIL import Image

    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256])
    img = (img + g.integers(0, 32, img.shape)).clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.moveaxis(img, 0, -1)).save(path)


# -- SemanticKITTI -------------------------------------------------------------------------
def write_semantickitti_tree(
    root: str | Path,
    sequences: dict[str, list[tuple[np.ndarray, np.ndarray | None]]],
    calib: str | Path,
    image_size: tuple[int, int] | None = (1241, 376),
) -> Path:
    """``sequences``: ``{"08": [(points (N, 4) float32, raw uint32 labels (N,) or None), ...]}``;
    ``calib``: a calib.txt to copy into every sequence; ``image_size`` (W, H) of the PNGs
    written to image_2 (None: no images)."""
    root = Path(root)
    for seq, scans in sequences.items():
        folder = root / "sequences" / seq
        (folder / "velodyne").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(calib, folder / "calib.txt")
        for i, (points, labels) in enumerate(scans):
            frame = f"{i:06d}"
            np.ascontiguousarray(points, dtype=np.float32).tofile(
                folder / "velodyne" / f"{frame}.bin"
            )
            if labels is not None:
                (folder / "labels").mkdir(exist_ok=True)
                np.ascontiguousarray(labels, dtype=np.uint32).tofile(
                    folder / "labels" / f"{frame}.label"
                )
            if image_size is not None:
                write_png(folder / "image_2" / f"{frame}.png", *image_size, seed=i)
    return root


def shared_semantickitti_tree(
    root: str | Path,
    shared: str | Path,
    sequences: dict[str, list[int]] | None = None,
    image_size: tuple[int, int] | None = (1241, 376),
) -> Path:
    """A tree around the real scan 00/000000: ``sequences`` maps a sequence to the point
    strides of its scans (``{"00": [1]}``: the whole real scan; ``[40, 41]``: two subsampled
    scans ``points[k::stride]``). Every sequence gets the real sequence-00 calib.txt."""
    shared = Path(shared) / "semantickitti" / "sequences" / "00"
    points = np.fromfile(shared / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)
    labels = np.fromfile(shared / "labels" / "000000.label", dtype=np.uint32)
    spec = {}
    for seq, strides in (sequences or {"00": [1]}).items():
        spec[seq] = [(points[k % s :: s], labels[k % s :: s]) for k, s in enumerate(strides)]
    return write_semantickitti_tree(root, spec, shared / "calib.txt", image_size)


# -- nuScenes ------------------------------------------------------------------------------
def rotation_to_quaternion(r: np.ndarray) -> list[float]:
    """(w, x, y, z) of the nearest rotation to the 3 x 3 matrix ``r`` (orthonormalised)."""
    from pyquaternion import Quaternion

    u, _, vt = np.linalg.svd(np.asarray(r, dtype=np.float64))
    rot = u @ vt
    if np.linalg.det(rot) < 0:  # pragma: no cover - a reflection is not a rotation
        raise ValueError("matrix is not a rotation")
    q = Quaternion(matrix=rot, atol=1e-9, rtol=1e-9)
    return [float(q.w), float(q.x), float(q.y), float(q.z)]


def pose(matrix: np.ndarray) -> dict[str, list[float]]:
    m = np.asarray(matrix, dtype=np.float64)
    return {
        "translation": [float(x) for x in m[:3, 3]],
        "rotation": rotation_to_quaternion(m[:3, :3]),
    }


@dataclass
class CameraSpec:
    intrinsic: np.ndarray
    """3 x 3."""
    cam2ego: np.ndarray
    """4 x 4 camera -> ego at the camera's timestamp."""
    ego2global: np.ndarray
    """4 x 4 ego pose at the camera's timestamp."""
    image: str | Path | None = None
    """A JPEG to copy; None: write a synthetic one of ``size``."""
    size: tuple[int, int] = (1600, 900)
    timestamp: int = 0


@dataclass
class SampleSpec:
    points: np.ndarray
    """(N, 5) float32 x, y, z, intensity, ring."""
    lidar2ego: np.ndarray
    ego2global: np.ndarray
    labels: np.ndarray | None = None
    """(N,) uint8 raw lidarseg ids 0..31, None for no lidarseg record."""
    cameras: dict[str, CameraSpec] = field(default_factory=dict)
    lidar_token: str | None = None
    timestamp: int = 0


def write_nuscenes_tree(
    root: str | Path, scenes: dict[str, list[SampleSpec]], version: str = "v1.0-mini"
) -> Path:
    """Write a nuScenes tree with lidarseg; ``scenes`` maps a scene name (``scene-0061``) to
    its keyframes in order. Returns the root."""
    root = Path(root)
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    lidarseg: list[dict[str, Any]] = []
    tables["category"] = [
        {"token": _token("category", i), "name": name, "description": name, "index": i}
        for i, name in enumerate(RAW_CLASSES)
    ]
    log_token = _token("log")
    tables["log"] = [
        {
            "token": log_token,
            "logfile": "mv2d-bench-test",
            "vehicle": "n015",
            "date_captured": "2018-07-24",
            "location": "singapore-onenorth",
        }
    ]
    map_file = f"maps/{_token('map')}.png"
    write_png(root / map_file, 8, 8)
    tables["map"] = [
        {
            "token": _token("map"),
            "log_tokens": [log_token],
            "category": "semantic_prior",
            "filename": map_file,
        }
    ]
    channels = ["LIDAR_TOP", *NUSCENES_CAMERAS]
    sensors = {c: _token("sensor", c) for c in channels}
    tables["sensor"] = [
        {"token": sensors[c], "channel": c, "modality": "lidar" if c == "LIDAR_TOP" else "camera"}
        for c in channels
    ]
    (root / "lidarseg" / version).mkdir(parents=True, exist_ok=True)
    for scene_name, samples in scenes.items():
        scene_token = _token("scene", scene_name)
        sample_tokens = [_token("sample", scene_name, i) for i in range(len(samples))]
        tables["scene"].append(
            {
                "token": scene_token,
                "log_token": log_token,
                "nbr_samples": len(samples),
                "first_sample_token": sample_tokens[0],
                "last_sample_token": sample_tokens[-1],
                "name": scene_name,
                "description": "written by mv2d_bench.loaders.seg_trees",
            }
        )
        for i, spec in enumerate(samples):
            tok = sample_tokens[i]
            ts = spec.timestamp or 1532402927000000 + 500000 * i
            tables["sample"].append(
                {
                    "token": tok,
                    "timestamp": ts,
                    "prev": sample_tokens[i - 1] if i else "",
                    "next": sample_tokens[i + 1] if i + 1 < len(samples) else "",
                    "scene_token": scene_token,
                }
            )
            lidar_tok = spec.lidar_token or _token("lidar", scene_name, i)
            lidar_file = f"samples/LIDAR_TOP/{scene_name}__LIDAR_TOP__{ts}.pcd.bin"
            (root / lidar_file).parent.mkdir(parents=True, exist_ok=True)
            np.ascontiguousarray(spec.points, dtype=np.float32).tofile(root / lidar_file)
            _sample_data(tables, lidar_tok, tok, ts, sensors["LIDAR_TOP"], spec.lidar2ego,
                         spec.ego2global, None, lidar_file, "pcd", 0, 0)  # fmt: skip
            if spec.labels is not None:
                name = f"lidarseg/{version}/{lidar_tok}_lidarseg.bin"
                np.ascontiguousarray(spec.labels, dtype=np.uint8).tofile(root / name)
                lidarseg.append(
                    {"token": lidar_tok, "sample_data_token": lidar_tok, "filename": name}
                )
            for c, cam in spec.cameras.items():
                cam_tok = _token("camera", scene_name, i, c)
                cts = cam.timestamp or ts
                fname = f"samples/{c}/{scene_name}__{c}__{cts}.jpg"
                (root / fname).parent.mkdir(parents=True, exist_ok=True)
                if cam.image is not None:
                    shutil.copyfile(cam.image, root / fname)
                else:
                    from PIL import Image

                    write_png(root / (fname + ".png"), *cam.size, seed=i)
                    Image.open(root / (fname + ".png")).convert("RGB").save(root / fname, "JPEG")
                    (root / (fname + ".png")).unlink()
                _sample_data(tables, cam_tok, tok, cts, sensors[c], cam.cam2ego, cam.ego2global,
                             cam.intrinsic, fname, "jpg", *cam.size)  # fmt: skip
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (folder / f"{name}.json").write_text(json.dumps(rows, indent=0), encoding="utf-8")
    (folder / "lidarseg.json").write_text(json.dumps(lidarseg, indent=0), encoding="utf-8")
    return root


def _sample_data(tables, token, sample, ts, sensor, to_ego, ego_pose, intrinsic, filename,
                 fileformat, width, height) -> None:  # fmt: skip
    cs_token = _token("calibrated_sensor", token)
    pose_token = _token("ego_pose", token)
    tables["calibrated_sensor"].append(
        {
            "token": cs_token,
            "sensor_token": sensor,
            **pose(to_ego),
            "camera_intrinsic": [] if intrinsic is None else np.asarray(intrinsic).tolist(),
        }
    )
    tables["ego_pose"].append({"token": pose_token, "timestamp": ts, **pose(ego_pose)})
    tables["sample_data"].append(
        {
            "token": token,
            "sample_token": sample,
            "ego_pose_token": pose_token,
            "calibrated_sensor_token": cs_token,
            "timestamp": ts,
            "fileformat": fileformat,
            "is_key_frame": True,
            "height": height,
            "width": width,
            "filename": filename,
            "prev": "",
            "next": "",
        }
    )


def shared_keyframe(shared: str | Path, stride: int = 1) -> SampleSpec:
    """The real scene-0061 keyframe of ``../shared/data/nuscenes`` (34,688 points, six real
    cameras) as a :class:`SampleSpec` without labels. The camera's ego pose at its own timestamp
    follows from sample.json's ``lidar2cam`` (which includes the ego motion):
    ``ego2global_cam = ego2global @ lidar2ego @ lidar2cam^-1 @ cam2ego^-1``."""
    base = Path(shared) / "nuscenes"
    info = json.loads((base / "sample.json").read_text())
    points = np.fromfile(base / info["lidar"]["file"], dtype=np.float32).reshape(-1, 5)[::stride]
    lidar2ego = np.array(info["lidar"]["lidar2ego"])
    ego2global = np.array(info["ego2global"])
    cameras = {}
    for c in NUSCENES_CAMERAS:
        cam = info["cameras"][c]
        cam2ego, lidar2cam = np.array(cam["cam2ego"]), np.array(cam["lidar2cam"])
        ego_cam = ego2global @ lidar2ego @ np.linalg.inv(lidar2cam) @ np.linalg.inv(cam2ego)
        cameras[c] = CameraSpec(
            intrinsic=np.array(cam["cam2img"]),
            cam2ego=cam2ego,
            ego2global=ego_cam,
            image=base / cam["file"],
            timestamp=int(round(cam["timestamp"] * 1e6)),
        )
    return SampleSpec(
        points=points,
        lidar2ego=lidar2ego,
        ego2global=ego2global,
        cameras=cameras,
        timestamp=int(round(info["timestamp"] * 1e6)),
    )


def shared_labelled_sweep(shared: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """The 40 real points with their real lidarseg labels: (points (40, 5), raw ids, token)."""
    base = Path(shared) / "nuscenes-lidarseg-40"
    (label_file,) = sorted((base / "lidarseg" / "v1.0-trainval").glob("*_lidarseg.bin"))
    (points_file,) = sorted((base / "samples" / "LIDAR_TOP").glob("*.pcd.bin"))
    points = np.fromfile(points_file, dtype=np.float32).reshape(-1, 5)
    labels = np.fromfile(label_file, dtype=np.uint8)
    return points, labels, label_file.name.split("_")[0]


BUS_RAW_IDS = (15, 16)
"""vehicle.bus.bendy and vehicle.bus.rigid: never used by :func:`synthetic_labels`, so that a
challenge class (bus) is absent from the labels of the trees written here."""


def synthetic_labels(n: int, seed: int) -> np.ndarray:
    """Raw lidarseg ids 0..31 for ``n`` points (seeded), without the two bus classes."""
    ids = np.array([i for i in range(len(RAW_CLASSES)) if i not in BUS_RAW_IDS], dtype=np.uint8)
    return ids[np.random.default_rng(seed).integers(0, len(ids), n)]


def shared_nuscenes_tree(
    root: str | Path, shared: str | Path, stride: int = 1, version: str = "v1.0-mini"
) -> Path:
    """A v1.0-mini tree with all ten mini scenes around the real files: scene-0061 starts with
    the real keyframe (six real cameras; seeded synthetic labels), scene-0103 (mini_val) holds
    the 40 real labelled points; every other scene one keyframe made of the real sweep with
    seeded synthetic labels (never bus: :data:`BUS_RAW_IDS`) and the real cameras. ``stride``
    subsamples the real sweep."""
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    names = list(splits["mini_train"]) + list(splits["mini_val"])
    key = shared_keyframe(shared, stride)
    pts40, labels40, token40 = shared_labelled_sweep(shared)
    scenes: dict[str, list[SampleSpec]] = {}
    for k, name in enumerate(names):
        if name == "scene-0103":
            spec = SampleSpec(pts40, key.lidar2ego, key.ego2global, labels40, key.cameras,
                              lidar_token=token40, timestamp=key.timestamp + 10**6 * k)  # fmt: skip
        else:
            spec = SampleSpec(key.points, key.lidar2ego, key.ego2global,
                              synthetic_labels(len(key.points), k), key.cameras,
                              timestamp=key.timestamp + 10**6 * k)  # fmt: skip
            if name == "scene-0061":
                spec.timestamp = key.timestamp
        scenes[name] = [spec]
    return write_nuscenes_tree(root, scenes, version)
