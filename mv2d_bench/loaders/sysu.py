"""SYSU-MM01 (Wu et al., ICCV 2017 / IJCV 2020): visible-infrared person re-identification.

Published layout (the ``SYSU-MM01`` folder of the authors' archive)::

    cam1/ .. cam6/<id:04d>/<nnnn>.jpg     RGB cameras 1, 2, 4, 5; infrared (IR) cameras 3, 6
    exp/train_id.txt, exp/val_id.txt, exp/test_id.txt   comma-separated identity numbers
    exp/rand_perm_cam.mat  (optional; or data_split/rand_perm_cam.mat, or the root)

What this loader follows (and where from):

- Training uses the train + val identities (296 + 99 = 395) with the images of all six cameras;
  labels are the sorted identities remapped to 0..394 (the AGW/DDAG ``pre_process_sysu.py``).
- Testing uses the 96 test identities. Query: every IR image of cams 3 and 6 (3,803 images);
  candidate gallery: every RGB image of cams 1, 2, 4, 5. Each protocol
  (:mod:`mv2d_bench.leaderboards.protocols.sysu`) samples its ten trial galleries from the
  candidate gallery (one or ten images per identity and camera, cams 1, 2, 4, 5 or 1, 2), as the
  authors' ``evaluation_SYSU_MM01.m`` / ``get_testing_set.m`` do.
- Image order inside an identity folder is the sorted file name order, the order both the
  official ``rand_perm_cam.mat`` (``feature{id}(i,:)`` is the i-th image) and DDAG's
  ``sorted(os.listdir(...))`` index; ``gallery.index_in_folder`` carries it to the protocol.
- ``rand_perm_cam.mat`` (authors' ``data_split/``) is a cell ``rand_perm_cam{cam}{id}``
  holding, per trial (rows, 10), a 1-based permutation of that identity's images in that camera;
  :mod:`mv2d_bench.loaders.sysu_perms` finds (root, ``--rand-perm-cam``,
  ``$MV2D_SYSU_RAND_PERM``), reads and hashes it; :meth:`SysuMM01.rand_perm_cam` reads the
  root's copy.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders.base import DataCard, DataError
from mv2d_bench.loaders.reid_common import (
    INFRARED,
    VISIBLE,
    ImageList,
    ReidBenchmark,
    ReidData,
    files_sha256,
    list_images,
    listing_sha256,
)
from mv2d_bench.loaders.sysu_perms import ROOT_LOCATIONS, read_rand_perm_cam

RGB_CAMS = (1, 2, 4, 5)
IR_CAMS = (3, 6)
ALL_CAMS = (1, 2, 3, 4, 5, 6)
ID_FILES = {"train": "exp/train_id.txt", "val": "exp/val_id.txt", "test": "exp/test_id.txt"}
RAND_PERM_LOCATIONS = ROOT_LOCATIONS  # where the data root may hold rand_perm_cam.mat
PUBLISHED = {
    "train ids": 296,
    "val ids": 99,
    "test ids": 96,
    "query images": 3803,
    "all-search gallery groups": 301,
    "indoor-search gallery groups": 112,
}


def parse_id_file(path: Path) -> list[int]:
    """Identity numbers of an ``exp/*_id.txt`` file (comma-separated, one line in the release;
    any mix of commas and whitespace is accepted)."""
    if not path.is_file():
        raise DataError(
            f"{path}: missing id file; SYSU-MM01 expects exp/train_id.txt, exp/val_id.txt and "
            "exp/test_id.txt (comma-separated identity numbers) under the root"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read id file ({exc})") from exc
    ids: list[int] = []
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        if not token.isdigit() or int(token) < 1:
            raise DataError(
                f"{path}: {token!r} is not an identity number (expected comma-separated "
                "positive integers such as 1,2,3)"
            )
        ids.append(int(token))
    if not ids:
        raise DataError(f"{path}: no identity numbers (expected comma-separated integers)")
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise DataError(f"{path}: identity numbers listed twice: {dup[:10]}")
    return ids


class SysuMM01(ReidBenchmark):
    """SYSU-MM01: 491 identities, RGB cams 1, 2, 4, 5 and IR cams 3, 6 (see module docstring)."""

    name: ClassVar[str] = "sysu-mm01"
    num_classes: ClassVar[int] = 395
    root_subdir: ClassVar[str] = "SYSU-MM01"
    protocols: ClassVar[tuple[str, ...]] = (
        "sysu-mm01/all-search/single-shot@2",
        "sysu-mm01/all-search/multi-shot@2",
        "sysu-mm01/indoor-search/single-shot@2",
        "sysu-mm01/indoor-search/multi-shot@2",
        "sysu-mm01/all-search/single-shot-seeded@1",
        "sysu-mm01/indoor-search/single-shot-seeded@1",
        "sysu-mm01/all-search/single-shot@1",
        "sysu-mm01/all-search/multi-shot@1",
        "sysu-mm01/indoor-search/single-shot@1",
        "sysu-mm01/indoor-search/multi-shot@1",
    )
    """The official galleries (@2, the default: the first), the AGW-compatible seeded draw, and
    the ambiguous @1 ids (kept scorable for old records)."""
    card: ClassVar[DataCard] = DataCard(
        citation=(
            "A. Wu, W.-S. Zheng, H.-X. Yu, S. Gong, J. Lai. RGB-Infrared Cross-Modality Person "
            "Re-Identification. ICCV 2017; and RGB-IR Person Re-identification by "
            "Cross-Modality Similarity Preservation. IJCV 2020."
        ),
        license="research use only, under the SYSU-MM01 agreement (agreement/agreement.pdf)",
        url="https://github.com/wuancong/SYSU-MM01",
        layout=(
            "cam1..cam6/<id:04d>/*.jpg and exp/{train,val,test}_id.txt; optional "
            "exp/rand_perm_cam.mat"
        ),
        notes="RGB cams 1, 2, 4, 5; IR cams 3, 6; cam 2 and cam 3 share a location.",
    )

    # -- reading the tree -----------------------------------------------------------------------
    def _check_cams(self) -> None:
        missing = [f"cam{c}" for c in ALL_CAMS if not (self.root / f"cam{c}").is_dir()]
        if missing:
            raise DataError(
                f"{self.root / missing[0]}: missing camera folder(s) {', '.join(missing)}; "
                f"SYSU-MM01 expects cam1..cam6/<id:04d>/*.jpg under {self.root}"
            )

    def split_ids(self) -> dict[str, list[int]]:
        """``{"train", "val", "test"}`` identity lists from ``exp/*_id.txt``."""
        splits = {k: parse_id_file(self.root / rel) for k, rel in ID_FILES.items()}
        for a, b in (("train", "test"), ("val", "test"), ("train", "val")):
            both = sorted(set(splits[a]) & set(splits[b]))
            if both:
                raise DataError(
                    f"{self.root / ID_FILES[b]}: identities {both[:10]} also appear in "
                    f"{self.root / ID_FILES[a]} (the splits must be disjoint)"
                )
        return splits

    def _folders(self, ids: list[int], id_file: str) -> dict[tuple[int, int], list[str]]:
        """``{(cam, id): sorted image names}`` for the folders that exist and hold images."""
        out: dict[tuple[int, int], list[str]] = {}
        for pid in ids:
            found = False
            for cam in ALL_CAMS:
                folder = self.root / f"cam{cam}" / f"{pid:04d}"
                if folder.is_dir():
                    found = True
                    names = list_images(folder)
                    if names:
                        out[(cam, pid)] = names
            if not found:
                raise DataError(
                    f"{self.root / id_file}: names identity {pid} but none of "
                    f"{self.root}/cam1..cam6/{pid:04d} exists"
                )
        return out

    def _listing_parts(self) -> dict[str, Any]:
        self._check_cams()
        splits = self.split_ids()
        train_ids = sorted(splits["train"] + splits["val"])
        folders = self._folders(sorted(splits["train"]), ID_FILES["train"])
        folders.update(self._folders(sorted(splits["val"]), ID_FILES["val"]))
        test_folders = self._folders(sorted(splits["test"]), ID_FILES["test"])
        return {
            "splits": splits,
            "train_ids": train_ids,
            "train_folders": folders,
            "test_folders": test_folders,
        }

    @staticmethod
    def _image_list(
        folders: dict[tuple[int, int], list[str]], cams: tuple[int, ...]
    ) -> tuple[ImageList, np.ndarray]:
        """Images of ``folders`` restricted to ``cams``, ordered by (camera, id, file name) as the
        official evaluation concatenates cameras; also each image's position in its folder."""
        paths, ids, cam_list, pos = [], [], [], []
        for cam, pid in sorted(k for k in folders if k[0] in cams):
            for j, name in enumerate(folders[(cam, pid)]):
                paths.append(f"cam{cam}/{pid:04d}/{name}")
                ids.append(pid)
                cam_list.append(cam)
                pos.append(j)
        modality = [INFRARED if c in IR_CAMS else VISIBLE for c in cam_list]
        return ImageList(
            tuple(paths), np.array(ids), np.array(cam_list), np.array(modality)
        ), np.array(pos, dtype=np.int64)

    def subsets(self) -> dict[str, Any]:
        """``train``, ``query``, ``gallery`` image lists (and the gallery's folder positions)."""
        parts = self._listing_parts()
        train, _ = self._image_list(parts["train_folders"], ALL_CAMS)
        query, _ = self._image_list(parts["test_folders"], IR_CAMS)
        gallery, gallery_pos = self._image_list(parts["test_folders"], RGB_CAMS)
        return {
            "train": train,
            "query": query,
            "gallery": gallery,
            "gallery_index": gallery_pos,
            **parts,
        }

    def all_images(self) -> ImageList:
        s = self.subsets()
        return ImageList.concat([s["train"], s["query"], s["gallery"]])

    # -- the dataset API -------------------------------------------------------------------------
    def load(self, trial: int | None = None, protocol: str | None = None) -> ReidData:
        """Training images and the test query / full candidate gallery (see ``reid_common``).

        SYSU-MM01 has one training split; its ten trials are gallery samples the protocol draws,
        so ``trial`` must be None. ``protocol`` (any of :attr:`protocols`) does not change the
        sets: every SYSU protocol scores the same query and candidate gallery."""
        if trial is not None:
            raise ValueError(
                f"{self.name}: trial={trial!r}, but SYSU-MM01 has one training split; its ten "
                "trials are gallery samples drawn by the protocol (pass trial=None)"
            )
        protocol = protocol or self.protocols[0]
        if protocol not in self.protocols:
            raise ValueError(
                f"{self.name}: protocol {protocol!r} is not one of {', '.join(self.protocols)}"
            )
        s = self.subsets()
        everything = ImageList.concat([s["train"], s["query"], s["gallery"]])
        self.prepare()
        train = self._image_set(s["train"], everything)
        listing_files = files_sha256(self.root, list(ID_FILES.values()))
        listing = listing_sha256(self.root, everything.paths)
        return ReidData(
            train=train,
            query=self._image_set(s["query"], everything),
            gallery=self._image_set(s["gallery"], everything, index_in_folder=s["gallery_index"]),
            trial=None,
            num_classes=train.num_classes,
            protocol=protocol,
            data_sha256=hashlib.sha256(f"{listing_files}\n{listing}".encode()).hexdigest(),
            split_id="sysu-mm01/train+val",
            info={
                "train_ids": len(s["train_ids"]),
                "test_ids": len(s["splits"]["test"]),
                "rand_perm_cam": str(self.rand_perm_cam_path() or ""),
            },
        )

    # -- the official trial permutations ---------------------------------------------------------
    def rand_perm_cam_path(self) -> Path | None:
        for rel in RAND_PERM_LOCATIONS:
            if (self.root / rel).is_file():
                return self.root / rel
        return None

    def rand_perm_cam(self) -> dict[int, dict[int, np.ndarray]] | None:
        """The official ``rand_perm_cam.mat`` as ``{cam: {id: (trials, n) int64, 0-based}}``
        (identities with no image in a camera are left out), or None when the root has none."""
        path = self.rand_perm_cam_path()
        return None if path is None else read_rand_perm_cam(path)

    # -- verify ---------------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        checks: list[dict[str, Any]] = []

        def add(name: str, ok: bool, detail: str) -> None:
            checks.append({"name": name, "ok": bool(ok), "detail": detail})

        try:
            self._check_cams()
            add("layout", True, f"{self.root}: cam1..cam6 present")
            s = self.subsets()
            add(
                "id files",
                True,
                "exp/{train,val,test}_id.txt parse, are disjoint, and name "
                "existing identity folders",
            )
        except DataError as exc:
            add("layout" if not checks else "id files", False, str(exc))
            return {"ok": False, "checks": checks}
        splits = s["splits"]
        counts = {
            "train ids": len(splits["train"]),
            "val ids": len(splits["val"]),
            "test ids": len(splits["test"]),
            "query images": len(s["query"]),
            "all-search gallery groups": len(
                {(c, i) for c, i in s["test_folders"] if c in RGB_CAMS}
            ),
            "indoor-search gallery groups": len(
                {(c, i) for c, i in s["test_folders"] if c in (1, 2)}
            ),
        }
        detail = ", ".join(f"{k} {v}" for k, v in counts.items())
        if self.check_counts:
            wrong = [
                f"{k} {counts[k]} (published {v})" for k, v in PUBLISHED.items() if counts[k] != v
            ]
            add("published counts", not wrong, "; ".join(wrong) or detail)
        else:
            checks.append(
                {
                    "name": "published counts",
                    "ok": True,
                    "skipped": True,
                    "detail": f"not compared (check_counts=false): {detail}",
                }
            )
        lacking = []
        for pid in s["train_ids"]:
            mods = {
                INFRARED if c in IR_CAMS else VISIBLE for c, i in s["train_folders"] if i == pid
            }
            if mods != {VISIBLE, INFRARED}:
                lacking.append(pid)
        add(
            "both modalities",
            not lacking,
            f"training identities without visible or infrared images: {lacking[:20]}"
            if lacking
            else f"all {len(s['train_ids'])} training identities have visible and infrared images",
        )
        perm_path = self.rand_perm_cam_path()
        if perm_path is None:
            add(
                "rand_perm_cam",
                True,
                "absent from the root: the @2 protocols need it (--rand-perm-cam FILE, "
                "reid.rand_perm_cam or $MV2D_SYSU_RAND_PERM); the seeded protocols do not",
            )
        else:
            try:
                perms = read_rand_perm_cam(perm_path)
                problems = []
                for (cam, pid), names in s["test_folders"].items():
                    if cam in RGB_CAMS:
                        n = perms.get(cam, {}).get(pid)
                        if n is None or n.shape[1] != len(names):
                            got = "none" if n is None else n.shape[1]
                            problems.append(f"cam{cam}/{pid:04d}: {len(names)} images, perm {got}")
                add(
                    "rand_perm_cam",
                    not problems,
                    f"{perm_path}: " + ("; ".join(problems[:5]) or "matches the test folders"),
                )
            except DataError as exc:
                add("rand_perm_cam", False, str(exc))
        everything = ImageList.concat([s["train"], s["query"], s["gallery"]])
        listing = listing_sha256(self.root, everything.paths)
        cache = self.cache_check(everything, listing)
        checks.append(cache)
        if cache["ok"] and self.cache_path().exists():
            add("images readable", True, "every image was decoded when the cache was built")
        else:
            checks.append(check_images_readable(self.root, everything.paths, self.progress))
        return {"ok": all(c["ok"] for c in checks), "checks": checks}


def check_images_readable(root: Path, paths: tuple[str, ...], progress: bool) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    bad = []
    for rel in tqdm(paths, desc="checking images", unit="img", disable=not progress):
        try:
            with Image.open(root / rel) as img:
                img.verify()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            bad.append(f"{root / rel} ({type(exc).__name__})")
    return {
        "name": "images readable",
        "ok": not bad,
        "detail": "; ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        if bad
        else f"{len(paths)} images open",
    }
