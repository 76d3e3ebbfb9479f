"""RegDB (Nguyen et al., Sensors 2017): visible-thermal person re-identification.

Published layout (the ``RegDB`` folder as used by the AGW/DDAG code, mangye16)::

    Visible/<n>/*.bmp, Thermal/<n>/*.bmp          412 people x 10 visible + 10 thermal images
    idx/train_visible_<t>.txt, idx/train_thermal_<t>.txt,
    idx/test_visible_<t>.txt,  idx/test_thermal_<t>.txt        t = 1..10

Each idx line is ``<path relative to the root> <label>`` (e.g.
``Thermal/1/male_front_t_00007_1.bmp 0``). Trial ``t`` trains on the 206 identities of its
``train_*_t`` files and tests on the other 206 (``test_*_t``): every trial is its own training
run, so a RegDB run record carries its trial and a leaderboard entry needs all ten.

What this loader follows: the AGW/DDAG ``RegDBData`` and ``process_test_regdb`` (mangye16):
the label column is the identity (training labels are remapped to 0..205 over the sorted labels
of the trial's two training files, which the published files already are); the test labels are
compared as they are. Cameras are coded as in AGW's ``eval_regdb``: visible = 1, thermal = 2.
"""

from __future__ import annotations

import hashlib
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
    listing_sha256,
)
from mv2d_bench.loaders.sysu import check_images_readable

TRIALS = tuple(range(1, 11))
VISIBLE_CAM, THERMAL_CAM = 1, 2
MODALITY_FOLDERS = {"visible": "Visible", "thermal": "Thermal"}
PUBLISHED = {"lines per idx file": 2060, "identities per idx file": 206}
DIRECTIONS = {
    "regdb/visible-to-thermal@1": ("visible", "thermal"),
    "regdb/thermal-to-visible@1": ("thermal", "visible"),
}


def idx_file(part: str, modality: str, trial: int) -> str:
    return f"idx/{part}_{modality}_{trial}.txt"


class RegDB(ReidBenchmark):
    """RegDB: 412 identities, one visible and one thermal camera, ten train/test trials."""

    name: ClassVar[str] = "regdb"
    num_classes: ClassVar[int] = 206
    root_subdir: ClassVar[str] = "RegDB"
    views: ClassVar[tuple[str, ...]] = ("visible", "thermal")
    protocols: ClassVar[tuple[str, ...]] = tuple(DIRECTIONS)
    card: ClassVar[DataCard] = DataCard(
        citation=(
            "D. T. Nguyen, H. G. Hong, K. W. Kim, K. R. Park. Person Recognition System Based on "
            "a Combination of Body Images from Visible Light and Thermal Cameras. Sensors "
            "17(3):605, 2017. Trial splits (idx/): M. Ye et al., AAAI 2018 / the AGW code."
        ),
        license="research use, on request to Dongguk University (DBPerson-Recog-DB1)",
        url="http://dm.dongguk.edu/link.html",
        layout="Visible/, Thermal/, idx/{train,test}_{visible,thermal}_{1..10}.txt",
        notes="idx lines are '<relative path> <label>'; 206 identities per split and trial.",
    )

    # -- reading the tree -----------------------------------------------------------------------
    def _check_layout(self) -> None:
        for folder in ("Visible", "Thermal", "idx"):
            if not (self.root / folder).is_dir():
                raise DataError(
                    f"{self.root / folder}: missing folder; RegDB expects Visible/, Thermal/ "
                    f"and idx/ under {self.root}"
                )

    def read_idx(self, rel: str) -> ImageList:
        """Images and labels of one idx file; every path must exist under the root."""
        path = self.root / rel
        if not path.is_file():
            raise DataError(
                f"{path}: missing idx file; RegDB expects idx/{{train,test}}_{{visible,thermal}}"
                "_{1..10}.txt ('<path> <label>' lines)"
            )
        modality = "visible" if "_visible_" in path.name else "thermal"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read idx file ({exc})") from exc
        paths, labels = [], []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise DataError(
                    f"{path}: line {n} is {line!r}; expected '<relative image path> <integer "
                    "label>'"
                )
            rel_img = fields[0].lstrip("./").replace("\\", "/")
            if not rel_img.startswith(MODALITY_FOLDERS[modality] + "/"):
                raise DataError(
                    f"{path}: line {n} names {rel_img}, expected a path under "
                    f"{MODALITY_FOLDERS[modality]}/ for a {modality} idx file"
                )
            if not (self.root / rel_img).is_file():
                raise DataError(
                    f"{path}: line {n} names {self.root / rel_img}, which does not exist"
                )
            paths.append(rel_img)
            labels.append(int(fields[1]))
        if not paths:
            raise DataError(f"{path}: no '<path> <label>' lines")
        mod = VISIBLE if modality == "visible" else INFRARED
        cam = VISIBLE_CAM if modality == "visible" else THERMAL_CAM
        n = len(paths)
        return ImageList(tuple(paths), np.array(labels), np.full(n, cam), np.full(n, mod))

    def trial_lists(self, trial: int) -> dict[str, ImageList]:
        """``train_visible``, ``train_thermal``, ``test_visible``, ``test_thermal`` of a trial."""
        self._check_trial(trial)
        self._check_layout()
        return {
            f"{part}_{mod}": self.read_idx(idx_file(part, mod, trial))
            for part in ("train", "test")
            for mod in ("visible", "thermal")
        }

    def _check_trial(self, trial: Any) -> None:
        if trial not in TRIALS or isinstance(trial, bool):
            raise ValueError(
                f"{self.name}: trial={trial!r}; RegDB has ten trials, each trained and tested on "
                "its own split: pass trial=1..10"
            )

    def all_images(self) -> ImageList:
        """Every image named by any of the 40 idx files, sorted by path (the cache rows)."""
        self._check_layout()
        seen: dict[str, tuple[int, int, int]] = {}
        for trial in TRIALS:
            for lst in self.trial_lists(trial).values():
                for p, i, c, m in zip(lst.paths, lst.ids, lst.cams, lst.modality, strict=True):
                    seen.setdefault(p, (int(i), int(c), int(m)))
        paths = tuple(sorted(seen))
        arr = np.array([seen[p] for p in paths], dtype=np.int64).reshape(-1, 3)
        return ImageList(paths, arr[:, 0], arr[:, 1], arr[:, 2])

    # -- the dataset API -------------------------------------------------------------------------
    def load(self, trial: int | None = None, protocol: str | None = None) -> ReidData:
        """Trial ``trial``'s training images and its query / gallery for ``protocol``
        (default ``regdb/visible-to-thermal@1``: query visible, gallery thermal)."""
        self._check_trial(trial)
        protocol = protocol or self.protocols[0]
        if protocol not in DIRECTIONS:
            raise ValueError(
                f"{self.name}: protocol {protocol!r} is not one of {', '.join(DIRECTIONS)}"
            )
        lists = self.trial_lists(trial)
        everything = self.all_images()
        self.prepare()
        train = ImageList.concat([lists["train_visible"], lists["train_thermal"]])
        q_mod, g_mod = DIRECTIONS[protocol]
        files = [idx_file(p, m, trial) for p in ("train", "test") for m in ("visible", "thermal")]
        digest = hashlib.sha256(
            f"{files_sha256(self.root, files)}\n"
            f"{listing_sha256(self.root, everything.paths)}".encode()
        ).hexdigest()
        train_set = self._image_set(train, everything)
        return ReidData(
            train=train_set,
            query=self._image_set(lists[f"test_{q_mod}"], everything),
            gallery=self._image_set(lists[f"test_{g_mod}"], everything),
            trial=trial,
            num_classes=train_set.num_classes,
            protocol=protocol,
            data_sha256=digest,
            split_id=f"regdb/trial-{trial}",
            info={"query": q_mod, "gallery": g_mod},
        )

    # -- verify ---------------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        checks: list[dict[str, Any]] = []

        def add(name: str, ok: bool, detail: str) -> None:
            checks.append({"name": name, "ok": bool(ok), "detail": detail})

        try:
            self._check_layout()
            add("layout", True, f"{self.root}: Visible/, Thermal/, idx/ present")
            lists = {t: self.trial_lists(t) for t in TRIALS}
            add("idx files", True, "40 idx files parse and name existing images")
        except DataError as exc:
            add("layout" if not checks else "idx files", False, str(exc))
            return {"ok": False, "checks": checks}
        wrong, overlap, mismatch = [], [], []
        for t, parts in lists.items():
            for key, lst in parts.items():
                n_ids = len(np.unique(lst.ids))
                if len(lst) != PUBLISHED["lines per idx file"] or n_ids != 206:
                    wrong.append(f"{idx_file(*key.split('_'), t)}: {len(lst)} lines, {n_ids} ids")
            for part in ("train", "test"):
                if set(parts[f"{part}_visible"].ids) != set(parts[f"{part}_thermal"].ids):
                    mismatch.append(f"trial {t} {part}")
            people = {
                part: {
                    Path(p).parent.name
                    for k, lst in parts.items()
                    if k.startswith(part)
                    for p in lst.paths
                }
                for part in ("train", "test")
            }
            if people["train"] & people["test"]:
                overlap.append(f"trial {t}: {sorted(people['train'] & people['test'])[:5]}")
        if self.check_counts:
            add(
                "published counts",
                not wrong,
                "; ".join(wrong[:5]) or "every idx file: 2060 lines, 206 identities",
            )
        else:
            checks.append(
                {
                    "name": "published counts",
                    "ok": True,
                    "skipped": True,
                    "detail": "not compared (check_counts=false)",
                }
            )
        add(
            "visible/thermal identities",
            not mismatch,
            "label sets differ between visible and thermal files: " + ", ".join(mismatch)
            if mismatch
            else "each split's visible and thermal files hold the same labels",
        )
        add(
            "train/test disjoint",
            not overlap,
            "people (image folders) in both train and test: " + "; ".join(overlap)
            if overlap
            else "no person folder is in both train and test of a trial",
        )
        everything = self.all_images()
        cache = self.cache_check(everything, listing_sha256(self.root, everything.paths))
        checks.append(cache)
        if cache["ok"] and self.cache_path().exists():
            add("images readable", True, "every image was decoded when the cache was built")
        else:
            checks.append(check_images_readable(self.root, everything.paths, self.progress))
        return {"ok": all(c["ok"] for c in checks), "checks": checks}
