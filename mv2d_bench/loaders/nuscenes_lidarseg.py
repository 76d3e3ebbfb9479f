"""nuScenes-lidarseg (Caesar et al., CVPR 2020; Fong et al., RA-L 2022): LiDAR segmentation with
six cameras, read through nuscenes-devkit's own tables and class mapper.

Published layout (the nuScenes archives plus the lidarseg archive)::

    <version>/{category,attribute,visibility,instance,sensor,calibrated_sensor,ego_pose,log,
               scene,sample,sample_data,sample_annotation,map,lidarseg}.json
    samples/LIDAR_TOP/*.pcd.bin          float32 x, y, z, intensity, ring index per point
    samples/CAM_*/*.jpg                  the six cameras of each keyframe (1600 x 900)
    lidarseg/<version>/<token>_lidarseg.bin    uint8 raw class per point (token: LIDAR_TOP
                                                sample_data token; located via lidarseg.json)
    maps/*.png                           map masks (the devkit opens them)

What comes from the devkit: ``NuScenes(version, dataroot)`` (tables and reverse index), the
splits (``nuscenes.utils.splits``: ``train``/``val`` of v1.0-trainval, ``mini_train``/``mini_val``
of v1.0-mini) and their keyframe order (``get_samples_in_eval_set``, as ``LidarSegEval``), the
class mapper (``LidarsegClassMapper``: 32 raw classes -> 16 + ignore 0; its table becomes a
lookup table here, :func:`~mv2d_bench.loaders.nuscenes_classes.coarse_lut`) and
``transform_matrix`` for the calibration chain of ``map_pointcloud_to_image``: LiDAR
calibrated_sensor -> ego pose of the sweep -> inverse ego pose of the camera image -> inverse
camera calibrated_sensor -> intrinsics, composed into one 3 x 4 matrix per camera. A point is
seen by a camera when depth > 1 m and 1 < u < W - 1, 1 < v < H - 1 (the devkit's rule).

Checked here and not by the devkit: a lidarseg ``.bin`` whose length differs from its sweep, a
raw id the mapper does not know, a missing table, a split scene missing from ``scene.json``:
each is one :class:`~mv2d_bench.loaders.base.DataError` naming the file.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders import nuscenes_classes as nc
from mv2d_bench.loaders.base import DataCard, DataError
from mv2d_bench.loaders.seg_common import (
    CameraRef,
    ScanRef,
    SegBenchmark,
    bool_option,
    check_options,
    listing_sha256,
    read_label_file,
)

CAMERAS = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
TABLES = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
    "lidarseg",
)
SPLITS = {"v1.0-trainval": ("train", "val"), "v1.0-mini": ("mini_train", "mini_val")}
PUBLISHED_KEYFRAMES = {"train": 28130, "val": 6019, "mini_train": 323, "mini_val": 81}
"""Keyframes per split (nuScenes-lidarseg labels every keyframe)."""


def camera_matrix(nusc: Any, lidar_sd: dict, cam_sd: dict) -> np.ndarray:
    """The 3 x 4 LiDAR -> pixel matrix of ``map_pointcloud_to_image``'s chain (float64)."""
    from nuscenes.utils.geometry_utils import transform_matrix
    from pyquaternion import Quaternion

    def tm(rec: dict, inverse: bool) -> np.ndarray:
        return transform_matrix(rec["translation"], Quaternion(rec["rotation"]), inverse=inverse)

    lidar_cs = nusc.get("calibrated_sensor", lidar_sd["calibrated_sensor_token"])
    lidar_pose = nusc.get("ego_pose", lidar_sd["ego_pose_token"])
    cam_pose = nusc.get("ego_pose", cam_sd["ego_pose_token"])
    cam_cs = nusc.get("calibrated_sensor", cam_sd["calibrated_sensor_token"])
    chain = tm(cam_cs, True) @ tm(cam_pose, True) @ tm(lidar_pose, False) @ tm(lidar_cs, False)
    intrinsic = np.asarray(cam_cs["camera_intrinsic"], dtype=np.float64)
    if intrinsic.shape != (3, 3):
        raise DataError(
            f"calibrated_sensor.json: record {cam_cs['token']}: field 'camera_intrinsic' must be "
            f"3 x 3 for camera {cam_sd.get('channel')}; got shape {intrinsic.shape}"
        )
    return intrinsic @ chain[:3]


class NuScenesLidarseg(SegBenchmark):
    """nuScenes-lidarseg: 16 classes, six cameras (see the module docstring)."""

    name: ClassVar[str] = "nuscenes-lidarseg"
    num_classes: ClassVar[int] = nc.NUM_CLASSES
    root_subdir: ClassVar[str] = "nuscenes"
    protocols: ClassVar[tuple[str, ...]] = (
        "nuscenes-lidarseg/val@1",
        "nuscenes-lidarseg/val-fov@1",
    )
    cameras: ClassVar[tuple[str, ...]] = CAMERAS
    visibility_rule: ClassVar[str] = "nuscenes"
    point_width: ClassVar[int] = 5
    card: ClassVar[DataCard] = DataCard(
        citation=(
            "H. Caesar et al. nuScenes: A multimodal dataset for autonomous driving. CVPR 2020; "
            "W. K. Fong et al. Panoptic nuScenes: A Large-Scale Benchmark for LiDAR Panoptic "
            "Segmentation and Tracking. RA-L 2022 (nuScenes-lidarseg)."
        ),
        license="CC BY-NC-SA 4.0 (nuScenes terms of use)",
        url="https://www.nuscenes.org/nuscenes#download",
        layout=(
            "<version>/*.json (13 tables + lidarseg.json), samples/LIDAR_TOP/*.pcd.bin, "
            "samples/CAM_*/*.jpg, lidarseg/<version>/<token>_lidarseg.bin, maps/"
        ),
        checksums={
            "samples/LIDAR_TOP/n015-2018-07-24-11-22-45+0800__LIDAR_TOP__"
            "1532402927647951.pcd.bin": (
                "5f8f9b1b199ceff7d41cd319021a7a7b02dcd44d41f622a9e65a6a4a6be3cbdb"
            ),
        },
        notes=(
            "Versions v1.0-trainval (splits train, val) and v1.0-mini (mini_train, mini_val); "
            "open with the option version=v1.0-mini for the mini set."
        ),
    )

    def __init__(self, root=None, **options: Any) -> None:
        check_options(self.name, options, {"version", "check_counts"})
        super().__init__(root, **options)
        self.dataset_version = str(options.get("version", "v1.0-trainval"))
        if self.dataset_version not in SPLITS:
            raise ValueError(
                f"nuscenes-lidarseg: option 'version' must be one of {', '.join(SPLITS)} (the "
                f"versions with lidarseg train/val labels); got {self.dataset_version!r}"
            )
        self.check_counts = bool_option(options.get("check_counts", True), "check_counts")
        self._nusc = None
        self._lut = None
        self._refs: dict[str, list[ScanRef]] = {}

    # -- the devkit ---------------------------------------------------------------------------
    @property
    def tables(self) -> Path:
        """The version's table folder, ``<root>/<version>``."""
        return self.root / self.dataset_version

    def check_tables(self) -> None:
        folder = self.tables
        if not folder.is_dir():
            raise DataError(
                f"{folder}: table folder missing; nuScenes-lidarseg expects "
                f"{self.dataset_version}/*.json under {self.root} (option version= picks "
                "v1.0-trainval or v1.0-mini)"
            )
        for table in TABLES:
            path = folder / f"{table}.json"
            if not path.is_file():
                extra = " (from the nuScenes-lidarseg archive)" if table == "lidarseg" else ""
                raise DataError(
                    f"{path}: table missing{extra}; expected all of {', '.join(TABLES)}"
                )

    @property
    def nusc(self):
        """The devkit's ``NuScenes`` on this root (loaded once; errors name the file)."""
        if self._nusc is None:
            self.check_tables()
            from nuscenes import NuScenes

            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    self._nusc = NuScenes(self.dataset_version, str(self.root), verbose=False)
            except AssertionError as exc:
                raise DataError(f"{self.tables}: the devkit refused the tree: {exc}") from None
            except (KeyError, ValueError, OSError) as exc:  # a malformed table
                raise DataError(self._table_error(exc)) from None
        return self._nusc

    def _table_error(self, exc: Exception) -> str:
        """Name the table the devkit could not read (its own errors do not)."""
        import json

        for table in TABLES:
            path = self.tables / f"{table}.json"
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, OSError) as bad:
                return f"{path}: not a readable JSON table ({bad})"
            if not isinstance(rows, list):
                return f"{path}: expected a JSON list of records, found {type(rows).__name__}"
        return f"{self.tables}: the devkit could not index the tables ({type(exc).__name__}: {exc})"

    @property
    def lut(self) -> np.ndarray:
        if self._lut is None:
            from nuscenes.eval.lidarseg.utils import LidarsegClassMapper

            try:
                mapper = LidarsegClassMapper(self.nusc)
            except KeyError as exc:
                raise DataError(
                    f"{self.tables / 'category.json'}: class {exc} is not a "
                    "nuScenes-lidarseg class the devkit's mapper knows"
                ) from None
            self._lut = nc.coarse_lut(mapper)
        return self._lut

    # -- splits and scans ---------------------------------------------------------------------
    def split_names(self) -> tuple[str, ...]:
        return ("train", "val")

    def devkit_split(self, split: str) -> str:
        self.check_split(split)
        return SPLITS[self.dataset_version][0 if split == "train" else 1]

    def split_id(self, split: str) -> str:
        return f"nuscenes-lidarseg/{self.dataset_version}/{self.devkit_split(split)}"

    def sample_tokens(self, split: str) -> list[str]:
        """Keyframe tokens of ``split`` in the devkit's evaluation order."""
        from nuscenes.eval.lidarseg.utils import get_samples_in_eval_set

        name = self.devkit_split(split)
        nusc = self.nusc
        known = {s["name"] for s in nusc.scene}
        from nuscenes.utils.splits import create_splits_scenes

        missing = [s for s in create_splits_scenes(verbose=False)[name] if s not in known]
        if missing:
            raise DataError(
                f"{self.tables / 'scene.json'}: split {name} lists {len(missing)} "
                f"scene(s) the table does not have, e.g. {', '.join(missing[:3])}"
            )
        try:
            return get_samples_in_eval_set(nusc, name)
        except (AssertionError, KeyError) as exc:
            raise DataError(
                f"{self.tables / 'sample.json'}: the keyframes of split {name} do "
                f"not chain as scene.json says ({exc})"
            ) from None

    def scans(self, split: str) -> list[ScanRef]:
        self.check_split(split)
        if split in self._refs:
            return self._refs[split]
        nusc = self.nusc
        refs = []
        for sample_token in self.sample_tokens(split):
            sample = nusc.get("sample", sample_token)
            if "LIDAR_TOP" not in sample["data"]:
                raise DataError(
                    f"{self.tables / 'sample_data.json'}: keyframe {sample_token} "
                    "has no LIDAR_TOP sample_data"
                )
            sd_token = sample["data"]["LIDAR_TOP"]
            lidar_sd = nusc.get("sample_data", sd_token)
            try:
                label = nusc.get("lidarseg", sd_token)["filename"]
            except KeyError:
                raise DataError(
                    f"{self.tables / 'lidarseg.json'}: no record for the LIDAR_TOP "
                    f"sample_data {sd_token} (keyframe {sample_token})"
                ) from None
            cams = []
            for channel in CAMERAS:
                if channel not in sample["data"]:
                    raise DataError(
                        f"{self.tables / 'sample_data.json'}: keyframe "
                        f"{sample_token} has no {channel} image"
                    )
                cam_sd = nusc.get("sample_data", sample["data"][channel])
                matrix = camera_matrix(nusc, lidar_sd, cam_sd)
                cams.append(
                    CameraRef(
                        channel,
                        str(self.root / cam_sd["filename"]),
                        tuple(tuple(float(x) for x in row) for row in matrix),
                        (int(cam_sd["width"]), int(cam_sd["height"])),
                    )
                )
            refs.append(
                ScanRef(
                    sd_token,
                    str(self.root / lidar_sd["filename"]),
                    str(self.root / label),
                    tuple(cams),
                    {"sample_token": sample_token},
                )
            )
        self._refs[split] = refs
        return refs

    def read_raw_labels(self, ref: ScanRef, n_points: int) -> np.ndarray:
        return read_label_file(ref.labels, np.uint8, n_points, ref.points)

    def map_labels(self, raw: np.ndarray, source: str) -> np.ndarray:
        mapped = self.lut[raw]
        bad = mapped < 0
        if bad.any():
            ids = sorted({int(i) for i in np.unique(raw[bad])})
            raise DataError(
                f"{source}: unknown raw lidarseg class id(s) {ids[:10]}; expected the indices of "
                f"{self.tables / 'category.json'} ({len(nc.RAW_CLASSES)} classes)"
            )
        return mapped.astype(np.uint8)

    def write_predictions(self, folder, scan_id: str, pred: np.ndarray) -> Path:
        """``folder/lidarseg/<val split>/<token>_lidarseg.bin`` (uint8 1..16, the devkit's
        submission format; the split is ``val`` or ``mini_val``)."""
        from mv2d_bench.leaderboards.seg_submission import write_nuscenes_predictions

        return write_nuscenes_predictions(folder, self.devkit_split("val"), scan_id, pred)

    # -- provenance ---------------------------------------------------------------------------
    def data_sha256(self, splits: list[str]) -> str:
        """sha256 of the listing (paths and sizes) of the splits' sweeps, label files and
        images plus the table files."""
        files = [str(self.tables / f"{t}.json") for t in TABLES]
        for split in splits:
            for ref in self.scans(split):
                files += [ref.points, ref.labels, *(c.image for c in ref.cameras)]
        return listing_sha256(files, self.root)

    # -- verify -------------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        checks: list[dict[str, Any]] = []

        def add(name: str, ok: bool, detail: str, **extra: Any) -> None:
            checks.append({"name": name, "ok": bool(ok), "detail": detail, **extra})

        try:
            self.check_tables()
            n = len(self.nusc.lidarseg)
            add(
                "tables",
                True,
                f"{self.dataset_version}: {len(TABLES)} tables, {n} lidarseg records",
            )
        except DataError as exc:
            add("tables", False, str(exc))
            return {"benchmark": self.name, "root": str(self.root), "ok": False, "checks": checks}
        counts = {}
        for split in self.split_names():
            try:
                refs = self.scans(split)
                counts[self.devkit_split(split)] = len(refs)
                add(f"{split} split", True, f"{self.devkit_split(split)}: {len(refs)} keyframes")
            except DataError as exc:
                add(f"{split} split", False, str(exc))
        if self.check_counts:
            wrong = [f"{k}: {v} (published {PUBLISHED_KEYFRAMES[k]})" for k, v in counts.items()
                     if v != PUBLISHED_KEYFRAMES[k]]  # fmt: skip
            add("published keyframe counts", not wrong, "; ".join(wrong) or "as published")
        else:
            add(
                "published keyframe counts", True, "not compared (check_counts=false)", skipped=True
            )
        bad, missing = [], []
        total = 0
        for refs in self._refs.values():
            for ref in refs:
                total += 1
                pts, lab = Path(ref.points), Path(ref.labels)
                if not pts.is_file():
                    missing.append(str(pts))
                    continue
                if pts.stat().st_size % 20:
                    bad.append(f"{pts}: not a whole number of points (float32 x 5)")
                elif not lab.is_file():
                    missing.append(str(lab))
                elif lab.stat().st_size * 20 != pts.stat().st_size:
                    bad.append(
                        f"{lab}: {lab.stat().st_size} labels, {pts.stat().st_size // 20} points"
                    )
                missing += [c.image for c in ref.cameras if not Path(c.image).is_file()]
        add("sweeps and labels", not (bad or [m for m in missing if not m.endswith(".jpg")]),
            "; ".join(bad[:3] + [m for m in missing if not m.endswith(".jpg")][:3])
            or f"{total} sweeps with one uint8 label per point")  # fmt: skip
        jpgs = [m for m in missing if m.endswith(".jpg")]
        add("camera images", not jpgs, f"{len(jpgs)} missing, e.g. {jpgs[0]}" if jpgs
            else f"{6 * total} images")  # fmt: skip
        checks += self.checksum_checks()
        return self.report(checks)
