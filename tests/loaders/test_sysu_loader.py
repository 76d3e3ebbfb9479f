"""SYSU-MM01 loader on a tiny tree in the published layout (written here with PIL)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from mv2d_bench.loaders import create
from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.reid_common import INFRARED, VISIBLE, grayscale
from mv2d_bench.loaders.sysu import SysuMM01

TRAIN, VAL, TEST = [1, 2, 5], [3], [7, 8, 11]
SIZE = (16, 8)
# images per (cam, id); identity 8 has no cam-2 and no cam-5 folder
COUNT = {1: 3, 2: 2, 3: 2, 4: 2, 5: 3, 6: 1}


def write_tree(root: Path) -> dict[tuple[int, int], int]:
    rng = np.random.default_rng(0)
    made = {}
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir(parents=True)
        for pid in TRAIN + VAL + TEST:
            if pid == 8 and cam in (2, 5):
                continue
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir()
            for k in range(COUNT[cam]):
                pixels = rng.integers(0, 256, size=(24, 12, 3), dtype=np.uint8)
                if cam in (3, 6):  # IR images are published as 3 equal channels
                    pixels[..., 1] = pixels[..., 2] = pixels[..., 0]
                Image.fromarray(pixels).save(folder / f"{k + 1:04d}.jpg", quality=95)
            made[(cam, pid)] = COUNT[cam]
    (root / "exp").mkdir()
    for name, ids in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        (root / "exp" / f"{name}_id.txt").write_text(",".join(str(i) for i in ids))
    return made


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "SYSU-MM01"
    write_tree(root)
    return root


def bench(root: Path, **kw) -> SysuMM01:
    return SysuMM01(root, size=SIZE, check_counts=False, progress=False, **kw)


def test_load_splits_labels_and_cached_images(tree: Path):
    b = create("sysu-mm01", tree, size=SIZE, check_counts=False, progress=False)
    data = b.load()
    train, query, gallery = data.train, data.query, data.gallery
    n_train = sum(COUNT.values()) * 4  # 4 train + val identities, every camera
    assert len(train) == n_train and data.num_classes == 4 == train.num_classes
    assert sorted(set(train.ids.tolist())) == [1, 2, 3, 5]  # train + val ids
    assert train.labels.tolist() == np.searchsorted([1, 2, 3, 5], train.ids).tolist()
    assert set(train.modality[np.isin(train.cams, [3, 6])].tolist()) == {INFRARED}
    assert set(train.modality[np.isin(train.cams, [1, 2, 4, 5])].tolist()) == {VISIBLE}
    assert len(train.indices(INFRARED)) == (COUNT[3] + COUNT[6]) * 4
    # query: every IR image of the test identities; gallery: every RGB image of them
    assert len(query) == (COUNT[3] + COUNT[6]) * 3 and set(query.cams.tolist()) == {3, 6}
    n_rgb = sum(COUNT[c] for c in (1, 2, 4, 5)) * 3 - COUNT[2] - COUNT[5]  # id 8: no cam 2, 5
    assert len(gallery) == n_rgb and set(gallery.cams.tolist()) == {1, 2, 4, 5}
    assert set(query.ids.tolist()) == set(gallery.ids.tolist()) == {7, 8, 11}
    # gallery order: camera, identity, file name; index_in_folder is the file's sorted position
    keys = list(zip(gallery.cams.tolist(), gallery.ids.tolist(), gallery.paths, strict=True))
    assert keys == sorted(keys)
    for path, pos in zip(gallery.paths, gallery.index_in_folder, strict=True):
        assert int(Path(path).stem) == pos + 1
    # images: the PIL Lanczos resize of the file, channels first
    i = 5
    with Image.open(tree / query.paths[i]) as img:
        want = np.asarray(img.convert("RGB").resize((SIZE[1], SIZE[0]), Image.LANCZOS))
    item = query[i]
    assert item["image"].shape == (3, *SIZE) and item["image"].dtype == torch.uint8
    assert np.array_equal(item["image"].permute(1, 2, 0).numpy(), want)
    assert (item["id"], item["cam"], item["modality"]) == (query.ids[i], query.cams[i], INFRARED)
    batch = train.images([4, 0, 4])
    assert batch.shape == (3, 3, *SIZE) and torch.equal(batch[0], batch[2])
    assert torch.equal(batch[1], train[0]["image"])
    clone = pickle.loads(pickle.dumps(train))  # what a DataLoader worker receives
    assert torch.equal(clone.images([3]), train.images([3]))
    assert data.trial is None and data.split_id == "sysu-mm01/train+val"
    assert len(data.data_sha256) == 64


def test_grayscale_third_view_matches_pil(tree: Path):
    b = bench(tree, third_view=True)
    assert b.view_names == ("visible", "infrared", "grayscale")
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(2, 3, 9, 7), dtype=np.uint8)
    gray = grayscale(torch.from_numpy(rgb))
    for k in range(2):
        want = np.asarray(Image.fromarray(rgb[k].transpose(1, 2, 0)).convert("L"))
        for ch in range(3):
            assert np.array_equal(gray[k, ch].numpy(), want)
    with pytest.raises(ValueError, match="uint8 images shaped"):
        grayscale(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))


def test_cache_written_atomically_and_verified(tree: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    b = bench(tree, cache_dir=cache_dir)
    report = b.verify()  # before prepare: the tree is fine, the cache is not built yet
    assert report["ok"], report
    assert "not built yet" in {c["name"]: c for c in report["checks"]}["cache"]["detail"]
    path = b.prepare()
    assert path == cache_dir / "sysu-mm01-16x8.h5"
    assert sorted(os.listdir(cache_dir)) == ["sysu-mm01-16x8.h5"]  # no temp file left
    n_all = len(b.all_images())
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (n_all, 16, 8, 3) and f["images"].dtype == np.uint8
        assert f["images"].chunks == (1, 16, 8, 3)
        assert f["paths"].shape == (n_all,)
    report = b.verify()
    checks = {c["name"]: c for c in report["checks"]}
    assert (
        report["ok"] and checks["cache"]["ok"] and "matches the tree" in checks["cache"]["detail"]
    )
    mtime = path.stat().st_mtime_ns
    assert b.prepare() == path and path.stat().st_mtime_ns == mtime  # valid cache kept
    # a new image makes the cache stale; verify says so, prepare rebuilds it
    Image.new("RGB", (12, 24)).save(tree / "cam1" / "0007" / "0099.jpg")
    checks = {c["name"]: c for c in b.verify()["checks"]}
    assert not checks["cache"]["ok"] and "stale" in checks["cache"]["detail"]
    b.prepare()
    assert {c["name"]: c for c in b.verify()["checks"]}["cache"]["ok"]


def test_verify_compares_published_counts(tree: Path):
    report = SysuMM01(tree, size=SIZE, progress=False).verify()
    checks = {c["name"]: c for c in report["checks"]}
    assert not report["ok"] and not checks["published counts"]["ok"]
    assert "train ids 3 (published 296)" in checks["published counts"]["detail"]
    assert "query images 9 (published 3803)" in checks["published counts"]["detail"]


def test_rand_perm_cam_read_from_the_root(tree: Path):
    assert bench(tree).rand_perm_cam() is None
    rng = np.random.default_rng(0)
    cams = np.empty((6, 1), dtype=object)
    want = {}
    for c in range(1, 7):
        people = np.empty((1, 11), dtype=object)
        for p in range(1, 12):
            folder = tree / f"cam{c}" / f"{p:04d}"
            n = len(os.listdir(folder)) if folder.is_dir() else 0
            people[0, p - 1] = (
                np.stack([rng.permutation(n) + 1 for _ in range(10)]).astype(float)
                if n else np.zeros((0, 0))
            )  # fmt: skip
            if n:
                want[(c, p)] = people[0, p - 1].astype(int) - 1
        cams[c - 1, 0] = people
    scipy.io.savemat(tree / "exp" / "rand_perm_cam.mat", {"rand_perm_cam": cams})
    perms = bench(tree).rand_perm_cam()
    got = {(c, p): a for c, d in perms.items() for p, a in d.items()}
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[k], want[k]) for k in want)
    checks = {c["name"]: c for c in bench(tree).verify()["checks"]}
    assert checks["rand_perm_cam"]["ok"], checks["rand_perm_cam"]
    cams[0, 0][0, 6] = np.ones((10, 3))  # not a permutation
    scipy.io.savemat(tree / "exp" / "rand_perm_cam.mat", {"rand_perm_cam": cams})
    with pytest.raises(DataError, match=r"rand_perm_cam\{1\}\{7\} rows are not permutations"):
        bench(tree).rand_perm_cam()


# -- bad input: one clear error each, naming the path ----------------------------------------
def test_missing_camera_folder(tree: Path):
    for f in (tree / "cam4").rglob("*.jpg"):
        f.unlink()
    for d in sorted((tree / "cam4").iterdir()):
        d.rmdir()
    (tree / "cam4").rmdir()
    with pytest.raises(DataError, match=f"{tree / 'cam4'}: missing camera folder"):
        bench(tree).load()
    report = bench(tree).verify()
    assert not report["ok"] and "cam4" in report["checks"][0]["detail"]


def test_missing_id_file(tree: Path):
    (tree / "exp" / "test_id.txt").unlink()
    with pytest.raises(DataError, match=f"{tree / 'exp' / 'test_id.txt'}: missing id file"):
        bench(tree).load()
    report = bench(tree).verify()
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        ("layout", True),
        ("id files", False),
    ]
    assert "test_id.txt: missing id file" in report["checks"][1]["detail"]


def test_id_file_with_a_bad_token(tree: Path):
    (tree / "exp" / "val_id.txt").write_text("3,x4")
    with pytest.raises(DataError, match=f"{tree / 'exp' / 'val_id.txt'}: 'x4' is not an"):
        bench(tree).load()


def test_id_file_naming_absent_folders(tree: Path):
    (tree / "exp" / "test_id.txt").write_text("7,8,11,42")
    with pytest.raises(
        DataError, match=f"{tree / 'exp' / 'test_id.txt'}: names identity 42 but none of "
        f"{tree}/cam1..cam6/0042 exists"
    ):  # fmt: skip
        bench(tree).load()


def test_unreadable_image(tree: Path, tmp_path: Path):
    bad = tree / "cam3" / "0011" / "0002.jpg"
    bad.write_bytes(b"not a jpeg at all")
    b = bench(tree, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match=f"{bad}: cannot read image"):
        b.prepare()
    assert not (tmp_path / "c").exists() or os.listdir(tmp_path / "c") == []  # nothing half
    checks = {c["name"]: c for c in b.verify()["checks"]}
    assert not checks["images readable"]["ok"] and str(bad) in checks["images readable"]["detail"]


def test_overlapping_splits_and_trial_argument(tree: Path):
    with pytest.raises(ValueError, match="SYSU-MM01 has one training split"):
        bench(tree).load(trial=1)
    (tree / "exp" / "val_id.txt").write_text("3,7")
    with pytest.raises(
        DataError, match=r"test_id.txt: identities \[7\] also appear in .*val_id.txt"
    ):
        bench(tree).load()


def test_loader_sets_feed_every_sysu_protocol_through_an_npz(tree: Path, tmp_path: Path):
    """query / gallery lists -> npz (one-hot identity features) -> each protocol scores 100;
    with rand_perm_cam.mat in the root the official draw takes the same path."""
    from mv2d_bench.leaderboards.protocols import get

    data = bench(tree).load()
    eye = np.eye(12)
    path = tmp_path / "pred.npz"
    np.savez(
        path,
        query_feat=eye[data.query.ids], query_ids=data.query.ids, query_cams=data.query.cams,
        gallery_feat=eye[data.gallery.ids], gallery_ids=data.gallery.ids,
        gallery_cams=data.gallery.cams, gallery_index=data.gallery.index_in_folder,
    )  # fmt: skip
    perms = {c: {} for c in range(1, 7)}
    groups = zip(data.gallery.cams.tolist(), data.gallery.ids.tolist(), strict=True)
    for cam, pid in set(groups):
        n = int(((data.gallery.cams == cam) & (data.gallery.ids == pid)).sum())
        perms[cam][pid] = np.stack([np.roll(np.arange(n), t) for t in range(10)])
    for pid in SysuMM01.protocols:  # every protocol, the official ones with permutations
        cls = type(get(pid))
        proto = cls() if cls.draw == "seeded" else cls(rand_perm_cam=perms)
        score = proto.score_npz(str(path))
        assert len(score.per_trial) == 10 and score.metrics["mAP"] == 100.0, pid
    proto = type(get("sysu-mm01/all-search/single-shot@1"))(rand_perm_cam=perms)
    with np.load(path) as z:
        trials = proto.trial_galleries(z["gallery_ids"], z["gallery_cams"], z["gallery_index"])
    # trial t takes folder position (0 - t) mod n of every group: file number ((-t) mod n) + 1
    for t, sel in enumerate(trials):
        for i in sel:
            n = perms[int(data.gallery.cams[i])][int(data.gallery.ids[i])].shape[1]
            assert int(Path(data.gallery.paths[i]).stem) == (-t) % n + 1


def test_cli_data_prepare_and_verify(tree: Path, tmp_path: Path, capsys):
    from mv2d_bench.cli import main

    opts = ["-o", "size=16x8", "-o", "check_counts=false", "-o", "progress=false",
            "-o", f"cache_dir={tmp_path / 'cli-cache'}"]  # fmt: skip
    assert main(["data", "prepare", "sysu-mm01", "--root", str(tree), *opts]) == 0
    assert (tmp_path / "cli-cache" / "sysu-mm01-16x8.h5").is_file()
    capsys.readouterr()
    assert main(["data", "verify", "sysu-mm01", "--root", str(tree), "--json", *opts]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and {c["name"] for c in report["checks"]} >= {"cache", "id files"}
    assert main(["data", "verify", "sysu-mm01", "--root", str(tree), "-o", "size=big"]) == 2
    assert "option size='big'" in capsys.readouterr().err
