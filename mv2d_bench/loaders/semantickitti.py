"""SemanticKITTI (Behley et al., ICCV 2019): LiDAR semantic segmentation on KITTI odometry.

Published layout (the ``dataset`` folder of the KITTI odometry + SemanticKITTI archives)::

    sequences/NN/velodyne/NNNNNN.bin    float32 x, y, z, remission per point
    sequences/NN/labels/NNNNNN.label    uint32 per point: low 16 bits semantic id, high 16 instance
    sequences/NN/image_2/NNNNNN.png     the left colour camera (KITTI odometry colour archive)
    sequences/NN/calib.txt              P0..P3 and Tr (12 numbers each, row-major 3 x 4)

Splits (semantic-kitti-api ``semantic-kitti.yaml``): train 00-07, 09, 10; val 08; test 11-21
(no labels). Labels are mapped with the official ``learning_map`` to 19 classes + ignore 0
(:mod:`mv2d_bench.loaders.semantickitti_classes`); an id that the map does not list is an error
(semantic-kitti-api silently maps ids below 359 to 0). Camera: ``uvw = P2 @ [Tr; 0 0 0 1] @
(x, y, z, 1)``, visible when w > 0 and the pixel is inside image_2 (its size read from the
PNG); about 85 % of a scan lies outside the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders import semantickitti_classes as kc
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

PUBLISHED_SCANS: dict[str, int] = {
    "00": 4541,
    "01": 1101,
    "02": 4661,
    "03": 801,
    "04": 271,
    "05": 2761,
    "06": 1101,
    "07": 1101,
    "08": 4071,
    "09": 1591,
    "10": 1201,
    "11": 921,
    "12": 1061,
    "13": 3281,
    "14": 631,
    "15": 1901,
    "16": 1731,
    "17": 491,
    "18": 1801,
    "19": 4981,
    "20": 831,
    "21": 2721,
}
"""Scans per sequence in the KITTI odometry release."""


def parse_calib(path: Path) -> dict[str, np.ndarray]:
    """``P2`` (3 x 4) and ``Tr`` (4 x 4, with the row 0 0 0 1) from a ``calib.txt``."""
    if not path.is_file():
        raise DataError(f"{path}: calibration file not found (SemanticKITTI needs P2 and Tr)")
    fields: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, rest = line.partition(":")
        if sep:
            fields[key.strip()] = rest.split()
    out = {}
    for key in ("P2", "Tr"):
        if key not in fields:
            raise DataError(
                f"{path}: field '{key}' missing; expected a line '{key}: <12 numbers>' "
                f"(found fields: {', '.join(fields) or 'none'})"
            )
        try:
            values = np.array([float(v) for v in fields[key]], dtype=np.float64)
        except ValueError:
            raise DataError(f"{path}: field '{key}': expected 12 numbers") from None
        if values.shape != (12,):
            raise DataError(f"{path}: field '{key}': expected 12 numbers, found {values.size}")
        out[key] = values.reshape(3, 4)
    out["Tr"] = np.vstack([out["Tr"], [0.0, 0.0, 0.0, 1.0]])
    return out


def _sequence_list(value: Any, option: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    seqs = []
    for item in items:
        text = str(item).strip()
        if not text.isdigit():
            raise ValueError(f"option '{option}': {item!r} is not a sequence number such as 08")
        seqs.append(f"{int(text):02d}")
    return tuple(seqs)


class SemanticKitti(SegBenchmark):
    """SemanticKITTI: 19 classes, one camera (image_2). See the module docstring."""

    name: ClassVar[str] = "semantickitti"
    num_classes: ClassVar[int] = kc.NUM_CLASSES
    root_subdir: ClassVar[str] = "semantickitti"
    protocols: ClassVar[tuple[str, ...]] = ("semantickitti/val@1", "semantickitti/val-fov@1")
    cameras: ClassVar[tuple[str, ...]] = ("image_2",)
    visibility_rule: ClassVar[str] = "semantickitti"
    point_width: ClassVar[int] = 4
    card: ClassVar[DataCard] = DataCard(
        citation=(
            "J. Behley, M. Garbade, A. Milioto, J. Quenzel, S. Behnke, C. Stachniss, J. Gall. "
            "SemanticKITTI: A Dataset for Semantic Scene Understanding of LiDAR Sequences. "
            "ICCV 2019; A. Geiger, P. Lenz, R. Urtasun. Are we ready for autonomous driving? "
            "The KITTI vision benchmark suite. CVPR 2012."
        ),
        license="CC BY-NC-SA 3.0 (labels: SemanticKITTI; scans and images: KITTI odometry)",
        url="http://www.semantic-kitti.org/dataset.html",
        layout=(
            "sequences/NN/{velodyne/*.bin, labels/*.label, image_2/*.png, calib.txt} "
            "(train 00-07, 09, 10; val 08; test 11-21 without labels)"
        ),
        checksums={
            "sequences/00/velodyne/000000.bin": (
                "bf272996d5b6d25cc5589e1089137cb20a98b63bd4823a7fea5631b359f6d68c"
            ),
            "sequences/00/labels/000000.label": (
                "7fef55d3447e5af16eec9001af713b1aeb5b73d16fc756a5f9fe13ebff83c2ca"
            ),
            "sequences/00/calib.txt": (
                "1bb615b4535ac73053be176ac1650fcfe7678ae8225d8999e5a822aa71655682"
            ),
        },
        notes=(
            "Labels through semantic-kitti-api's learning_map (19 classes + ignore); image_2 "
            "comes from the KITTI odometry colour archive and sees about 15 % of a scan."
        ),
    )

    def __init__(self, root=None, **options: Any) -> None:
        known = {"train_sequences", "val_sequences", "test_sequences", "check_counts"}
        check_options(self.name, options, known)
        super().__init__(root, **options)
        if (self.root / "dataset" / "sequences").is_dir() and not (
            self.root / "sequences"
        ).is_dir():
            self.root = self.root / "dataset"
        self.sequences = {
            "train": _sequence_list(options.get("train_sequences"), "train_sequences")
            or kc.TRAIN_SEQUENCES,
            "val": _sequence_list(options.get("val_sequences"), "val_sequences")
            or kc.VAL_SEQUENCES,
            "test": _sequence_list(options.get("test_sequences"), "test_sequences")
            or kc.TEST_SEQUENCES,
        }
        self.check_counts = bool_option(options.get("check_counts", True), "check_counts")
        self._calib: dict[str, dict[str, np.ndarray]] = {}
        self._refs: dict[str, list[ScanRef]] = {}

    # -- layout ---------------------------------------------------------------------------
    def split_names(self) -> tuple[str, ...]:
        return ("train", "val", "test")

    def official(self) -> bool:
        return (
            self.sequences["train"] == kc.TRAIN_SEQUENCES
            and self.sequences["val"] == kc.VAL_SEQUENCES
            and self.sequences["test"] == kc.TEST_SEQUENCES
        )

    def split_id(self, split: str) -> str:
        self.check_split(split)
        return f"semantickitti/{split}:{'+'.join(self.sequences[split])}"

    def sequence_dir(self, seq: str) -> Path:
        folder = self.root / "sequences" / seq
        if not folder.is_dir():
            raise DataError(
                f"{folder}: sequence folder missing; SemanticKITTI expects "
                f"sequences/NN/{{velodyne,labels,image_2,calib.txt}} under {self.root}"
            )
        return folder

    def calib(self, seq: str) -> dict[str, np.ndarray]:
        if seq not in self._calib:
            self._calib[seq] = parse_calib(self.sequence_dir(seq) / "calib.txt")
        return self._calib[seq]

    def camera_matrix(self, seq: str) -> np.ndarray:
        c = self.calib(seq)
        return c["P2"] @ c["Tr"]

    def scans(self, split: str) -> list[ScanRef]:
        self.check_split(split)
        if split in self._refs:
            return self._refs[split]
        refs = []
        for seq in self.sequences[split]:
            folder = self.sequence_dir(seq)
            velodyne = folder / "velodyne"
            if not velodyne.is_dir():
                raise DataError(f"{velodyne}: folder missing (the sequence's scans)")
            matrix = tuple(tuple(float(x) for x in row) for row in self.camera_matrix(seq))
            for f in sorted(velodyne.glob("*.bin")):
                frame = f.stem
                labels = None if split == "test" else str(folder / "labels" / f"{frame}.label")
                camera = CameraRef("image_2", str(folder / "image_2" / f"{frame}.png"), matrix)
                refs.append(ScanRef(f"{seq}/{frame}", str(f), labels, (camera,)))
            if not any(r.id.startswith(f"{seq}/") for r in refs):
                raise DataError(f"{velodyne}: no scans (*.bin) in sequence {seq}")
        self._refs[split] = refs
        return refs

    def read_raw_labels(self, ref: ScanRef, n_points: int) -> np.ndarray:
        return read_label_file(ref.labels, np.uint32, n_points, ref.points)

    def map_labels(self, raw: np.ndarray, source: str) -> np.ndarray:
        return kc.map_labels(raw, source)

    def write_predictions(self, folder, scan_id: str, pred: np.ndarray) -> Path:
        """``folder/sequences/NN/predictions/NNNNNN.label``: raw ids via learning_map_inv."""
        from mv2d_bench.leaderboards.seg_submission import write_semantickitti_predictions

        return write_semantickitti_predictions(folder, scan_id, pred)

    # -- provenance -----------------------------------------------------------------------
    def data_sha256(self, splits: list[str]) -> str:
        """sha256 of the listing (paths and sizes) of the splits' scan and label files plus
        the content of their sequences' calib.txt."""
        files = []
        seqs = []
        for split in splits:
            for ref in self.scans(split):
                files.append(ref.points)
                if ref.labels:
                    files.append(ref.labels)
            seqs += [s for s in self.sequences[split] if s not in seqs]
        files += [str(self.sequence_dir(s) / "calib.txt") for s in seqs]
        return listing_sha256(files, self.root)

    # -- verify ---------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        checks: list[dict[str, Any]] = []

        def add(name: str, ok: bool, detail: str, **extra: Any) -> None:
            checks.append({"name": name, "ok": bool(ok), "detail": detail, **extra})

        counts: dict[str, int] = {}
        for split in ("train", "val", "test"):
            try:
                refs = self.scans(split)
                for seq in self.sequences[split]:
                    counts[seq] = sum(r.id.startswith(f"{seq}/") for r in refs)
                    self.calib(seq)
                add(f"{split} layout", True, f"sequences {', '.join(self.sequences[split])}: "
                    f"{len(refs)} scans, calib.txt with P2 and Tr")  # fmt: skip
            except DataError as exc:
                add(f"{split} layout", False, str(exc))
        published = {s: PUBLISHED_SCANS.get(s) for s in counts}
        if self.check_counts:
            wrong = [f"{s}: {n} (published {published[s]})" for s, n in counts.items()
                     if n != published[s]]  # fmt: skip
            add("published scan counts", not wrong,
                "; ".join(wrong) or f"{sum(counts.values())} scans as published")  # fmt: skip
        else:
            add("published scan counts", True, "not compared (check_counts=false)", skipped=True)
        bad_labels, missing_images, n_labelled = [], [], 0
        for split in ("train", "val"):
            for ref in self._refs.get(split, []):
                n_points = Path(ref.points).stat().st_size // 16
                lab = Path(ref.labels)
                if not lab.is_file():
                    bad_labels.append(f"{lab} missing")
                elif lab.stat().st_size != 4 * n_points:
                    bad_labels.append(f"{lab}: {lab.stat().st_size // 4} labels, {n_points} points")
                n_labelled += 1
                if not Path(ref.cameras[0].image).is_file():
                    missing_images.append(ref.cameras[0].image)
        add("labels", not bad_labels, "; ".join(bad_labels[:5]) or
            f"{n_labelled} label files, one uint32 per point")  # fmt: skip
        add("image_2", not missing_images,
            f"{len(missing_images)} missing, e.g. {missing_images[0]}" if missing_images
            else f"{n_labelled} images")  # fmt: skip
        checks += self.checksum_checks()
        return self.report(checks)
