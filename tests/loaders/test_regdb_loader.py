"""RegDB loader on a tiny tree in the published layout (written here with PIL)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from mv2d_bench.loaders import create
from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.regdb import RegDB
from mv2d_bench.loaders.reid_common import INFRARED, VISIBLE

PEOPLE = list(range(1, 9))
PER = 2  # images per person and modality (10 in the release)
SIZE = (12, 6)


def image_path(modality: str, person: int, k: int) -> str:
    folder, tag = ("Visible", "v") if modality == "visible" else ("Thermal", "t")
    return f"{folder}/{person}/male_front_{tag}_{person * 10 + k:05d}_{person}.bmp"


def split(trial: int) -> tuple[list[int], list[int]]:
    order = np.random.default_rng(trial).permutation(PEOPLE).tolist()
    return sorted(order[:4]), sorted(order[4:])


def write_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    for modality in ("visible", "thermal"):
        for person in PEOPLE:
            for k in range(PER):
                path = root / image_path(modality, person, k)
                path.parent.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, size=(20, 10, 3), dtype=np.uint8)
                if modality == "thermal":
                    Image.fromarray(pixels[..., 0]).save(path)  # thermal: single channel
                else:
                    Image.fromarray(pixels).save(path)
    (root / "idx").mkdir()
    for trial in range(1, 11):
        train, test = split(trial)
        for part, people in (("train", train), ("test", test)):
            for modality in ("visible", "thermal"):
                lines = [
                    f"{image_path(modality, p, k)} {label if part == 'train' else p + 100}"
                    for label, p in enumerate(people)
                    for k in range(PER)
                ]
                (root / "idx" / f"{part}_{modality}_{trial}.txt").write_text("\n".join(lines))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "RegDB"
    write_tree(root)
    return root


def bench(root: Path, **kw) -> RegDB:
    return RegDB(root, size=SIZE, check_counts=False, progress=False, **kw)


def test_trial_splits_labels_and_directions(tree: Path):
    data = create("regdb", tree, size=SIZE, check_counts=False, progress=False).load(trial=3)
    train_people, test_people = split(3)
    train = data.train
    assert len(train) == 4 * PER * 2 and data.num_classes == 4 and data.trial == 3
    assert train.labels.tolist() == train.ids.tolist()  # published labels are 0..N-1 already
    folders = {int(Path(p).parent.name) for p in train.paths}
    assert folders == set(train_people)
    assert set(train.cams[train.modality == VISIBLE].tolist()) == {1}
    assert set(train.cams[train.modality == INFRARED].tolist()) == {2}
    assert all(p.startswith("Thermal/") for p in np.array(train.paths)[train.indices(INFRARED)])
    # visible-to-thermal (default): query = test visible, gallery = test thermal
    assert set(data.query.cams.tolist()) == {1} and set(data.gallery.cams.tolist()) == {2}
    assert sorted(set(data.query.ids.tolist())) == [p + 100 for p in test_people]
    assert data.split_id == "regdb/trial-3" and data.protocol == "regdb/visible-to-thermal@1"
    t2v = bench(tree).load(trial=3, protocol="regdb/thermal-to-visible@1")
    assert set(t2v.query.cams.tolist()) == {2} and t2v.query.paths == data.gallery.paths
    # a thermal (grayscale) bmp comes back as three equal channels of the Lanczos resize
    i = int(t2v.query.indices(INFRARED)[0])
    with Image.open(tree / t2v.query.paths[i]) as img:
        want = np.asarray(img.convert("RGB").resize((SIZE[1], SIZE[0]), Image.LANCZOS))
    got = t2v.query[i]["image"]
    assert got.dtype == torch.uint8 and np.array_equal(got.permute(1, 2, 0).numpy(), want)
    # the trials really differ, and each run names its own
    other = bench(tree).load(trial=4)
    assert {int(Path(p).parent.name) for p in other.train.paths} == set(split(4)[0])
    assert other.data_sha256 != data.data_sha256


def test_trial_is_required(tree: Path):
    for bad in (None, 0, 11, True):
        with pytest.raises(ValueError, match="pass trial=1..10"):
            bench(tree).load(trial=bad)
    with pytest.raises(ValueError, match="not one of regdb/visible-to-thermal@1"):
        bench(tree).load(trial=1, protocol="regdb/both@1")


def test_cache_and_verify(tree: Path, tmp_path: Path):
    b = bench(tree, cache_dir=tmp_path / "cache")
    path = b.prepare()
    assert os.listdir(tmp_path / "cache") == [path.name] == ["regdb-12x6.h5"]
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (len(PEOPLE) * PER * 2, 12, 6, 3)
        assert f.attrs["resample"] == "lanczos"
    report = b.verify()
    assert report["ok"], report
    names = [c["name"] for c in report["checks"]]
    assert names == ["layout", "idx files", "published counts", "visible/thermal identities",
                     "train/test disjoint", "cache", "images readable"]  # fmt: skip
    strict = RegDB(tree, size=SIZE, progress=False, cache_dir=tmp_path / "cache").verify()
    checks = {c["name"]: c for c in strict["checks"]}
    assert not strict["ok"] and "idx/train_visible_1.txt: 8 lines, 4 ids" in checks[
        "published counts"]["detail"]  # fmt: skip


def test_train_test_overlap_is_reported(tree: Path):
    line = image_path("visible", split(2)[1][0], 0) + " 0\n"
    with open(tree / "idx" / "train_visible_2.txt", "a") as f:
        f.write("\n" + line)
    checks = {c["name"]: c for c in bench(tree).verify()["checks"]}
    assert not checks["train/test disjoint"]["ok"]
    assert "trial 2" in checks["train/test disjoint"]["detail"]


# -- bad input: one clear error each, naming the path ----------------------------------------
def test_missing_modality_folder(tree: Path):
    os.rename(tree / "Thermal", tree / "thermal_old")
    with pytest.raises(DataError, match=f"{tree / 'Thermal'}: missing folder"):
        bench(tree).load(trial=1)


def test_missing_idx_file(tree: Path):
    (tree / "idx" / "test_thermal_7.txt").unlink()
    with pytest.raises(DataError, match=f"{tree / 'idx' / 'test_thermal_7.txt'}: missing idx"):
        bench(tree).load(trial=7)
    with pytest.raises(DataError, match="test_thermal_7.txt: missing idx"):
        bench(tree).prepare()  # the cache covers all ten trials


def test_idx_naming_absent_image(tree: Path):
    idx = tree / "idx" / "test_visible_5.txt"
    lines = idx.read_text().splitlines()
    lines[2] = "Visible/99/male_front_v_00990_99.bmp 7"
    idx.write_text("\n".join(lines))
    with pytest.raises(
        DataError,
        match=f"{idx}: line 3 names {tree / 'Visible/99/male_front_v_00990_99.bmp'}, which "
        "does not exist",
    ):
        bench(tree).load(trial=5)


def test_malformed_idx_line_and_wrong_modality(tree: Path):
    idx = tree / "idx" / "train_thermal_1.txt"
    n_lines = len(idx.read_text().splitlines())
    idx.write_text(idx.read_text() + "\nThermal/1/x.bmp")
    with pytest.raises(DataError, match=f"{idx}: line {n_lines + 1} is 'Thermal/1/x.bmp'"):
        bench(tree).load(trial=1)
    idx.write_text(image_path("visible", 1, 0) + " 0")
    with pytest.raises(DataError, match=f"{idx}: line 1 names Visible/1/.*expected a path under "
                       "Thermal/"):  # fmt: skip
        bench(tree).load(trial=1)


def test_unreadable_image(tree: Path, tmp_path: Path):
    bad = tree / image_path("thermal", 3, 1)
    bad.write_bytes(b"BM garbage")
    b = bench(tree, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match=f"{bad}: cannot read image"):
        b.prepare()
    assert os.listdir(tmp_path / "c") == []
    checks = {c["name"]: c for c in b.verify()["checks"]}
    assert not checks["images readable"]["ok"] and str(bad) in checks["images readable"]["detail"]
