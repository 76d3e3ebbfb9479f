"""The official SYSU-MM01 protocols (@2) against an independent implementation of the dataset
authors' MATLAB evaluation, with the REAL ``rand_perm_cam.mat`` and ``test_id.mat`` from
``../shared/data/sysu-mm01-eval/`` and a tiny SYSU-MM01 tree whose folder sizes match the
permutation file (empty image files: only the listing matters here).

``official_trial`` re-implements ``get_testing_set.m`` (gallery: cameras in the mode's order,
identities ascending, the first 1 or 10 entries of row ``t`` of ``rand_perm_cam{cam}{id}``, in
that order), ``get_cmc_multi_cam.m`` and ``get_map_multi_cam.m`` (stable sort, removal of gallery
images whose location label ``cam_id = [1 2 2 4 5 6]`` equals the probe's, ``unique(...,
'stable')``), one probe at a time; it reads the .mat files with scipy itself and shares no code
with the package. Distances: cosine of L2-normalised features (the suite's distance; for unit
vectors it orders like the official euclidean one)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.io

from mv2d_bench.leaderboards.protocols import sysu
from mv2d_bench.loaders.sysu import SysuMM01
from mv2d_bench.loaders.sysu_perms import RandPermNotFound, sha256_file

CAM_ID = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}  # cameras 2 and 3 share a location
MODES = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
DIM = 24


@pytest.fixture(scope="module")
def official(shared_data):
    folder = shared_data / "sysu-mm01-eval"
    perm = scipy.io.loadmat(folder / "rand_perm_cam.mat")["rand_perm_cam"].reshape(-1)
    test_ids = scipy.io.loadmat(folder / "test_id.mat")["id"].reshape(-1).astype(int)
    cells = {c: perm[c - 1].reshape(-1) for c in range(1, 7)}
    return folder / "rand_perm_cam.mat", cells, sorted(test_ids.tolist())


@pytest.fixture(scope="module")
def tree(official, tmp_path_factory):
    """cam<c>/<id:04d>/<k:04d>.jpg for every test identity and camera the permutation file
    covers, exp/{train,val,test}_id.txt, and exp/rand_perm_cam.mat (a link to the real file)."""
    mat, cells, test_ids = official
    root = tmp_path_factory.mktemp("sysu-official") / "SYSU-MM01"
    for c, people in cells.items():
        for pid in test_ids:
            n = np.asarray(people[pid - 1]).shape[1] if np.asarray(people[pid - 1]).size else 0
            if n:
                folder = root / f"cam{c}" / f"{pid:04d}"
                folder.mkdir(parents=True)
                for k in range(1, n + 1):
                    (folder / f"{k:04d}.jpg").touch()
    train, val = [i for i in range(1, 10) if i not in test_ids][:2]
    for pid in (train, val):
        for c in (1, 3):
            (root / f"cam{c}" / f"{pid:04d}").mkdir(parents=True)
            (root / f"cam{c}" / f"{pid:04d}" / "0001.jpg").touch()
    (root / "exp").mkdir()
    (root / "exp" / "test_id.txt").write_text(",".join(map(str, test_ids)))
    (root / "exp" / "train_id.txt").write_text(str(train))
    (root / "exp" / "val_id.txt").write_text(str(val))
    os.symlink(mat, root / "exp" / "rand_perm_cam.mat")
    return root


def features(cam: np.ndarray, ids: np.ndarray, k: np.ndarray) -> np.ndarray:
    """A deterministic feature per image (identity centre + image noise)."""
    out = np.empty((ids.size, DIM))
    for i, (c, p, j) in enumerate(zip(cam, ids, k, strict=True)):
        centre = np.random.default_rng(int(p)).normal(size=DIM)
        noise = np.random.default_rng(int(p) * 1000 + int(c) * 100 + int(j)).normal(size=DIM)
        out[i] = centre + 1.6 * noise
    return out


@pytest.fixture(scope="module")
def npz(tree):
    """The loader's query and full candidate gallery, as a run's predictions file holds them
    (a subset of 250 queries keeps the per-probe reference quick)."""
    subsets = SysuMM01(tree, check_counts=False, progress=False).subsets()
    q, g = subsets["query"], subsets["gallery"]
    keep = np.sort(np.random.default_rng(0).choice(len(q), size=250, replace=False))

    def parse(paths):
        parts = [p.split("/") for p in paths]
        return (np.array([int(a[0][3:]) for a in parts]), np.array([int(a[1]) for a in parts]),
                np.array([int(a[2].split(".")[0]) for a in parts]))  # fmt: skip

    qc, qi, qk = parse([q.paths[i] for i in keep])
    gc, gi, gk = parse(g.paths)
    assert np.array_equal(gi, g.ids) and np.array_equal(gc, g.cams)
    assert np.array_equal(subsets["gallery_index"], gk - 1)  # position in folder = file k - 1
    return {
        "query_feat": features(qc, qi, qk), "query_ids": qi, "query_cams": qc,
        "gallery_feat": features(gc, gi, gk), "gallery_ids": gi, "gallery_cams": gc,
        "gallery_index": subsets["gallery_index"], "_gallery_k": gk,
    }  # fmt: skip


def official_trial(cells, test_ids, arrays, mode, shots, t):
    """One trial of the official evaluation (get_testing_set + get_cmc/get_map_multi_cam),
    percent: rank-1/5/10/20 (distinct identities), mAP, mINP (AGW) and the image-level CMC."""
    by_image = {
        (int(c), int(i), int(k)): n
        for n, (c, i, k) in enumerate(
            zip(arrays["gallery_cams"], arrays["gallery_ids"], arrays["_gallery_k"], strict=True)
        )
    }
    rows = []
    for cam in MODES[mode]:
        for pid in range(1, cells[cam].size + 1):
            if pid not in test_ids or np.asarray(cells[cam][pid - 1]).size == 0:
                continue
            perm_row = np.asarray(cells[cam][pid - 1])[t].astype(int)
            rows += [by_image[(cam, pid, k)] for k in perm_row[:shots]]
    g_feat = arrays["gallery_feat"][rows]
    g_ids = arrays["gallery_ids"][rows]
    g_loc = np.array([CAM_ID[int(c)] for c in arrays["gallery_cams"][rows]])
    qn = arrays["query_feat"] / np.linalg.norm(arrays["query_feat"], axis=1, keepdims=True)
    gn = g_feat / np.linalg.norm(g_feat, axis=1, keepdims=True)
    dist = 1.0 - qn @ gn.T
    counter, image_counter = np.zeros(len(rows)), np.zeros(len(rows))
    valid, ap_sum, inp_sum = 0, 0.0, 0.0
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")  # MATLAB's sort is stable
        keep = g_loc[order] != CAM_ID[int(arrays["query_cams"][i])]
        ranked = g_ids[order][keep]
        match = ranked == arrays["query_ids"][i]
        if not match.any():
            continue
        valid += 1
        _, first = np.unique(ranked, return_index=True)
        unique_stable = ranked[np.sort(first)]
        counter[: unique_stable.size] += unique_stable == arrays["query_ids"][i]
        hits = np.flatnonzero(match) + 1
        image_counter[hits[0] - 1] += 1
        ap_sum += np.mean(np.arange(1, hits.size + 1) / hits)
        inp_sum += hits.size / hits[-1]
    cmc, image_cmc = np.cumsum(counter) / valid, np.cumsum(image_counter) / valid
    out = {f"rank-{k}": 100 * cmc[k - 1] for k in (1, 5, 10, 20)}
    out["mAP"], out["mINP"] = 100 * ap_sum / valid, 100 * inp_sum / valid
    out.update({f"rank-{k}-image": 100 * image_cmc[k - 1] for k in (1, 5, 10, 20)})
    return out


@pytest.mark.parametrize(
    "cls, mode, shots",
    [
        (sysu.OfficialAllSearchSingleShot, "all", 1),
        (sysu.OfficialAllSearchMultiShot, "all", 10),
        (sysu.OfficialIndoorSearchSingleShot, "indoor", 1),
        (sysu.OfficialIndoorSearchMultiShot, "indoor", 10),
    ],
)
def test_official_protocols_equal_the_authors_rule_with_the_real_permutations(
    official, tree, npz, cls, mode, shots
):
    mat, cells, test_ids = official
    proto = cls(root=tree)  # finds exp/rand_perm_cam.mat in the data root
    arrays = {k: v for k, v in npz.items() if not k.startswith("_")}
    score = proto.score(**arrays)
    assert proto.gallery_info() == {
        "source": "rand_perm_cam", "rand_perm_cam_sha256": sha256_file(mat), "seeds": None,
    }  # fmt: skip
    assert len(score.per_trial) == 10
    groups = 301 if mode == "all" else 112  # the published gallery groups
    sizes = {len(t) for t in proto.trial_galleries(arrays["gallery_ids"], arrays["gallery_cams"],
                                                    arrays["gallery_index"])}  # fmt: skip
    assert sizes == {groups * shots}
    refs = [official_trial(cells, test_ids, npz, mode, shots, t) for t in range(10)]
    for ours, ref in zip(score.per_trial, refs, strict=True):
        assert ours.keys() == ref.keys()
        for key in ref:
            assert ours[key] == pytest.approx(ref[key], abs=1e-9), key
    assert 0 < score.metrics["rank-1"] < 100  # a non-trivial problem
    for k in (1, 5, 10, 20):  # a distinct-identity rank is never worse than the image rank
        assert score.metrics[f"rank-{k}"] >= score.metrics[f"rank-{k}-image"] - 1e-9
    if shots == 10:  # ... and with ten images per identity they differ
        assert score.metrics["rank-5"] > score.metrics["rank-5-image"]
    for key in score.metrics:
        assert score.metrics[key] == pytest.approx(np.mean([r[key] for r in refs]), abs=1e-9)


def test_the_permutation_file_is_found_in_each_documented_place(official, tree, npz, tmp_path,
                                                                monkeypatch):  # fmt: skip
    mat, _, _ = official
    arrays = {k: v for k, v in npz.items() if not k.startswith("_")}
    want = sysu.OfficialAllSearchSingleShot(root=tree).score(**arrays).per_trial
    # an explicit file (mv2d-bench score --rand-perm-cam FILE, reid.rand_perm_cam)
    p = sysu.OfficialAllSearchSingleShot(rand_perm_cam_file=mat)
    assert p.score(**arrays).per_trial == want
    # $MV2D_SYSU_RAND_PERM, with no data root
    monkeypatch.setenv("MV2D_SYSU_RAND_PERM", str(mat))
    assert sysu.OfficialAllSearchSingleShot().score(**arrays).per_trial == want
    # nowhere: one error naming every place looked at
    monkeypatch.delenv("MV2D_SYSU_RAND_PERM")
    empty = tmp_path / "no-perms"
    empty.mkdir()
    with pytest.raises(RandPermNotFound) as err:
        sysu.OfficialAllSearchSingleShot(root=empty).score(**arrays)
    msg = str(err.value)
    for place in ("--rand-perm-cam", str(empty / "exp" / "rand_perm_cam.mat"),
                  str(empty / "data_split" / "rand_perm_cam.mat"), "$MV2D_SYSU_RAND_PERM (unset)",
                  "single-shot-seeded@1"):  # fmt: skip
        assert place in msg, place
    # a named file that is not there is an error too (not a silent fallback)
    with pytest.raises(RandPermNotFound, match="nope.mat: rand_perm_cam file not found"):
        sysu.OfficialAllSearchSingleShot(rand_perm_cam_file=tmp_path / "nope.mat").permutations()
    monkeypatch.setenv("MV2D_SYSU_RAND_PERM", str(tmp_path / "gone.mat"))
    with pytest.raises(RandPermNotFound, match=r"gone.mat: .*MV2D_SYSU_RAND_PERM"):
        sysu.OfficialAllSearchSingleShot().permutations()


def test_seeded_and_ambiguous_ids_say_where_their_galleries_came_from(official, tree, npz):
    mat, _, _ = official
    arrays = {k: v for k, v in npz.items() if not k.startswith("_")}
    seeded = sysu.SeededAllSearchSingleShot(root=tree)  # never reads the permutations
    assert sysu.SeededAllSearchSingleShot(rand_perm_cam={1: {}}).permutations() is None
    assert seeded.gallery_info() == {"source": "seeds", "rand_perm_cam_sha256": None,
                                     "seeds": list(range(10))}  # fmt: skip
    legacy = sysu.AllSearchSingleShot(root=tree)  # @1 takes the root's file when there is one
    assert legacy.gallery_info()["source"] == "rand_perm_cam"
    assert sysu.AllSearchSingleShot().gallery_info()["source"] == "seeds"  # ... else seeds
    # @1 with the official file draws the same images as @2 (only their order may differ)
    official2 = sysu.OfficialAllSearchSingleShot(root=tree)
    a = legacy.trial_galleries(arrays["gallery_ids"], arrays["gallery_cams"],
                               arrays["gallery_index"])  # fmt: skip
    b = official2.trial_galleries(arrays["gallery_ids"], arrays["gallery_cams"],
                                  arrays["gallery_index"])  # fmt: skip
    assert all(np.array_equal(np.sort(x), np.sort(y)) for x, y in zip(a, b, strict=True))
