"""SemanticKITTI through the loader: the real scan 00/000000 (counts stated in issue 9, checked
against an independent count), the image_2 projection, learning_map(_inv), and bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mv2d_bench import loaders
from mv2d_bench.loaders import semantickitti_classes as kc
from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.seg_trees import shared_semantickitti_tree, write_semantickitti_tree

pytest.importorskip("PIL", reason="the image_2 size is read with Pillow")

STATED_HISTOGRAM = [4886, 4234, 0, 0, 0, 0, 0, 0, 88, 35281, 3268, 26360, 0, 18268, 370, 27123,
                    1192, 2964, 532, 102]  # fmt: skip
RAW_HISTOGRAM = {
    0: 2184,
    1: 4,
    10: 4234,
    40: 34228,
    44: 3268,
    48: 26360,
    50: 18268,
    51: 370,
    52: 1471,
    60: 1053,
    70: 27123,
    71: 1192,
    72: 2964,
    80: 532,
    81: 102,
    99: 1227,
    255: 88,
}  # fmt: skip  (../shared/data/README.md, an independent count)


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("kitti")
    return shared_semantickitti_tree(root, shared_data, {"00": [1], "08": [7]})


def open_tree(root, **options):
    return loaders.create("semantickitti", root=root, train_sequences="00", **options)


def test_real_scan_through_the_loader(real_tree, shared_data):
    bench = open_tree(real_tree)
    (ref,) = bench.scans("train")
    assert ref.id == "00/000000"
    scan = bench.read_scan(ref)
    assert scan.points.shape == (124668, 4) and scan.points.dtype == np.float32
    hist = np.bincount(scan.labels, minlength=20).tolist()
    assert hist == STATED_HISTOGRAM
    # independent: the raw histogram of the data README through the learning map by hand
    expected = [0] * 20
    for raw, count in RAW_HISTOGRAM.items():
        expected[kc.LEARNING_MAP[raw]] += count
    assert hist == expected
    raw = np.fromfile(shared_data / "semantickitti/sequences/00/labels/000000.label", np.uint32)
    ids, counts = np.unique(raw & 0xFFFF, return_counts=True)
    assert dict(zip(ids.tolist(), counts.tolist(), strict=True)) == RAW_HISTOGRAM
    assert scan.image_sizes == ((1241, 376),)
    assert int(scan.visible.sum()) == 19369
    assert scan.ring is None


def test_image_2_projection_is_p2_times_tr(real_tree, shared_data):
    """Independent: parse calib.txt here, project in float64, keep 0 <= u < W, 0 <= v < H."""
    calib = {}
    for line in (shared_data / "semantickitti/sequences/00/calib.txt").read_text().splitlines():
        if ":" in line:
            key, values = line.split(":", 1)
            calib[key] = np.array(values.split(), dtype=float)
    p2 = calib["P2"].reshape(3, 4)
    tr = np.vstack([calib["Tr"].reshape(3, 4), [0, 0, 0, 1]])
    scan = open_tree(real_tree).read_scan(open_tree(real_tree).scans("train")[0])
    xyz1 = np.c_[scan.points[:, :3].astype(np.float64), np.ones(len(scan))]
    uvw = xyz1 @ (p2 @ tr).T
    u, v = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]
    inside = (uvw[:, 2] > 0) & (u >= 0) & (u < 1241) & (v >= 0) & (v < 376)
    assert np.array_equal(scan.visible[0], inside)
    np.testing.assert_allclose(scan.uv[0][inside], np.c_[u, v][inside], atol=1e-3)
    assert 1 - inside.mean() == pytest.approx(0.845, abs=0.01)  # "about 85 % has no image"


def test_splits_are_the_official_sequences(real_tree):
    bench = loaders.create("semantickitti", root=real_tree)
    assert bench.sequences == {
        "train": ("00", "01", "02", "03", "04", "05", "06", "07", "09", "10"),
        "val": ("08",),
        "test": tuple(f"{i:02d}" for i in range(11, 22)),
    }
    assert bench.split_id("val") == "semantickitti/val:08"
    with pytest.raises(DataError, match=r"sequences/01: sequence folder missing"):
        bench.scans("train")  # only 00 and 08 exist here
    val = bench.scans("val")
    assert [r.id for r in val] == ["08/000000"]
    assert len(bench.read_scan(val[0])) == len(range(0, 124668, 7))
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        bench.scans("dev")
    with pytest.raises(ValueError, match="not a sequence number"):
        loaders.create("semantickitti", root=real_tree, train_sequences="0x")
    with pytest.raises(ValueError, match="unknown option"):
        loaders.create("semantickitti", root=real_tree, sequence="00")


def test_learning_map_inverse_round_trip():
    classes = np.arange(20)
    raw = kc.to_raw(classes)
    assert raw.dtype == np.uint32 and raw.tolist()[:3] == [0, 10, 11]
    assert kc.map_labels(raw).tolist() == classes.tolist()
    assert kc.map_labels(np.array([252 | (7 << 16)], np.uint32)).tolist() == [1]  # moving-car
    assert len(kc.CLASSES) == 19 and kc.CLASSES[0] == "car" and kc.CLASSES[-1] == "traffic-sign"


def test_unknown_raw_id_is_an_error_naming_the_file(tmp_path, shared_data):
    calib = shared_data / "semantickitti/sequences/00/calib.txt"
    pts = np.zeros((3, 4), np.float32)
    write_semantickitti_tree(tmp_path, {"00": [(pts, np.array([10, 42, 42], np.uint32))]}, calib)
    bench = open_tree(tmp_path)
    with pytest.raises(
        DataError, match=r"000000\.label: unknown raw semantic id\(s\) 42 \(2 points"
    ):
        bench.read_scan(bench.scans("train")[0])


def test_label_length_must_match_the_scan(tmp_path, real_tree):
    root = tmp_path / "t"
    shutil.copytree(real_tree / "sequences" / "08", root / "sequences" / "00")
    label = root / "sequences/00/labels/000000.label"
    label.write_bytes(label.read_bytes()[:-8])
    bench = open_tree(root)
    with pytest.raises(DataError, match=r"000000\.label: 17808 labels for 17810 points"):
        bench.read_scan(bench.scans("train")[0])
    report = bench.verify()
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert "labels" in failed and not report["ok"]
    label.write_bytes(label.read_bytes() + b"\x00" * 11)  # 17810 labels and 3 stray bytes
    with pytest.raises(DataError, match=r"000000\.label: 71243 bytes for 17810 points"):
        bench.read_scan(bench.scans("train")[0])
    scan = root / "sequences/00/velodyne/000000.bin"
    scan.write_bytes(scan.read_bytes()[:-2])
    with pytest.raises(
        DataError, match=r"000000\.bin: 284958 bytes is not a whole number of points"
    ):
        bench.read_scan(bench.scans("train")[0])


def test_missing_calib_entry_names_the_file_and_field(tmp_path, real_tree):
    root = tmp_path / "t"
    shutil.copytree(real_tree / "sequences" / "08", root / "sequences" / "00")
    calib = root / "sequences/00/calib.txt"
    calib.write_text("\n".join(x for x in calib.read_text().splitlines() if not x.startswith("P2")))
    with pytest.raises(DataError, match=r"calib\.txt: field 'P2' missing"):
        open_tree(root).scans("train")
    calib.write_text("P2: 1 2 3\nTr: " + " ".join(["0"] * 12))
    with pytest.raises(DataError, match=r"calib\.txt: field 'P2': expected 12 numbers, found 3"):
        open_tree(root).scans("train")


def test_verify_reports_layout_counts_and_checksums(real_tree):
    report = open_tree(real_tree, val_sequences="08", test_sequences="08").verify()
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["train layout"]["ok"] and by_name["labels"]["ok"] and by_name["image_2"]["ok"]
    assert not by_name["published scan counts"]["ok"]  # one scan where 4541 are published
    assert "00: 1 (published 4541)" in by_name["published scan counts"]["detail"]
    assert by_name["sha256 000000.bin"]["ok"]
    quiet = open_tree(real_tree, val_sequences="08", test_sequences="08", check_counts="false")
    assert quiet.verify()["ok"]
