"""SYSU-MM01 protocols: all-search / indoor-search, single-shot / multi-shot (ten trials each).

Followed: the dataset authors' evaluation (wuancong/SYSU-MM01, ``evaluation_SYSU_MM01.m``,
``get_testing_set.m``, ``get_cmc_multi_cam.m``, ``get_map_multi_cam.m``) and, for the seeded
gallery draw and mINP, the AGW/DDAG code (mangye16, ``process_gallery_sysu``, ``eval_sysu``).

- Queries: every infrared image (cams 3 and 6) of the 96 test identities.
- Gallery, per trial: from the visible images of cams 1, 2, 4, 5 (all-search) or 1, 2
  (indoor-search), one image (single-shot) or ten (multi-shot; all when fewer) per identity and
  camera.
- Exclusion: gallery images from cam 2 are removed for queries from cam 3 (same location).
- CMC ranks distinct identities (the ranked gallery identities with repeats removed, in order);
  mAP and mINP rank images; a query with no valid match is left out of every mean; metrics are
  percentages averaged over the ten trials, each trial in ``Score.per_trial``. Reported: rank-1,
  5, 10, 20 (as the official code prints), mAP, mINP, and the image-level CMC ``rank-k-image``
  (the rank of the first true-match image, what the standard CMC of other evaluators counts).
- Ties: stable sort on the cosine distance; equal distances keep the trial gallery's order.

How each id draws its ten trial galleries (what makes published numbers comparable):

``sysu-mm01/{all,indoor}-search/{single,multi}-shot@2`` - the official galleries only
    From ``rand_perm_cam.mat`` (:mod:`mv2d_bench.loaders.sysu_perms`: ``--rand-perm-cam FILE``,
    ``reid.rand_perm_cam``, the data root or ``$MV2D_SYSU_RAND_PERM``; an error naming where it
    looked when absent): trial ``t`` takes the first one (ten) entries of row ``t`` of
    ``rand_perm_cam{cam}{id}``, the positions of images in the identity's folder (file-name
    order). The trial gallery is ordered as ``get_testing_set.m`` concatenates it: cameras in
    the protocol's order, identities ascending, images in permutation order.
``sysu-mm01/{all,indoor}-search/single-shot-seeded@1`` - the AGW/DDAG draw
    Trial ``t`` (0..9) uses ``random.Random(t)``, goes through the (identity, camera) groups by
    identity ascending and, within an identity, cameras in the order 1, 2, 4, 5, and calls
    ``choice(images)`` on the group's images in file-name order: DDAG's
    ``random.seed(trial); random.choice(sorted(files))`` loop (AGW's copy of
    ``process_gallery_sysu`` has the ``random.seed`` line commented out, so its galleries are
    not reproducible at all). The gallery keeps that order. No official counterpart exists for
    a seeded multi-shot draw, so there is no seeded multi-shot id.
``sysu-mm01/.../@1`` - AMBIGUOUS, kept scorable for old records
    The official permutations when one is found (same places as @2), else the seeded draw
    (``random.sample`` of min(10, n) for multi-shot); the trial gallery in candidate-gallery
    order. Records written before the gallery source was recorded cannot say which; records
    written now carry it (``protocol_gallery``) and leaderboards keep the two apart.

Every SYSU protocol's record carries ``protocol_gallery`` (:meth:`SysuProtocol.gallery_info`):
the gallery source, the permutation file's sha256 (or the seeds).

The npz holds the FULL candidate gallery (every visible test image with its camera, as
``SysuMM01.load().gallery`` lists it); the protocol draws the ten galleries from it. The npz
key ``gallery_index`` gives each gallery image's position in its folder; without it every group
of the npz must hold the whole folder in file-name order. (The released images are numbered
``0001.jpg`` .. ``nnnn.jpg`` in each folder, so position ``k - 1`` is the file ``k``: the same
image other Python ports pick by formatting the permutation value as ``cam<c>/<id:04d>/<k:04d>``.)
"""

from __future__ import annotations

import os
import random
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.leaderboards.protocols.base import Metric, Score
from mv2d_bench.leaderboards.reid_eval import (
    IMAGE_CMC_METRICS,
    REID_METRICS,
    ReidProtocol,
    evaluate,
    legacy_metrics,
    mean_metrics,
)
from mv2d_bench.loaders import sysu_perms

TRIAL_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
QUERY_CAMS = (3, 6)
EXCLUDE = ((3, 2),)
MULTI_SHOT = 10
SOURCE_OFFICIAL = "rand_perm_cam"
SOURCE_SEEDS = "seeds"


class SysuProtocol(ReidProtocol):
    """A SYSU-MM01 protocol; ``draw`` says how the ten galleries are drawn (module docstring):
    ``"official"`` (@2), ``"seeded"`` or ``"either"`` (the ambiguous @1 ids)."""

    benchmark: ClassVar[str] = "sysu-mm01"
    metrics: ClassVar[tuple[Metric, ...]] = REID_METRICS + IMAGE_CMC_METRICS
    trials: ClassVar[int] = 10
    required_seeds: ClassVar[int] = 1
    trial_seeds: ClassVar[tuple[int, ...]] = TRIAL_SEEDS
    gallery_cams: ClassVar[tuple[int, ...]] = (1, 2, 4, 5)
    shots: ClassVar[int] = 1
    draw: ClassVar[str] = "official"
    optional_npz_keys: ClassVar[dict[str, str]] = {
        "gallery_index": "(G,) int position of each gallery image in its cam/id folder, "
        "file-name order (needed with rand_perm_cam.mat when the gallery is not whole folders)",
    }

    def __init__(
        self,
        rand_perm_cam: dict[int, dict[int, np.ndarray]] | None = None,
        *,
        rand_perm_cam_file: str | os.PathLike | None = None,
        root: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        """``rand_perm_cam``: permutations already read (``{cam: {id: (10, n)}}``, 0-based);
        otherwise they are looked for on first use in ``rand_perm_cam_file``, the data
        ``root`` and ``$MV2D_SYSU_RAND_PERM`` (:func:`mv2d_bench.loaders.sysu_perms.locate`).
        Other keyword arguments: :class:`ReidProtocol` (device, block size, product)."""
        super().__init__(**kwargs)
        self._perms: sysu_perms.RandPermCam | None = None
        if rand_perm_cam is not None and self.draw != "seeded":  # the seeded draw never uses it
            self._perms = sysu_perms.RandPermCam(path="", sha256="", perms=rand_perm_cam)
        self.rand_perm_cam_file = rand_perm_cam_file
        self.root = root
        self._resolved = self._perms is not None or self.draw == "seeded"

    # -- where the galleries come from ----------------------------------------------------------
    def permutations(self) -> sysu_perms.RandPermCam | None:
        """The official permutations this protocol draws from (None: the seeded draw). Looked
        for once; a ``"official"`` protocol raises :class:`~mv2d_bench.loaders.sysu_perms.
        RandPermNotFound` naming every place looked at."""
        if not self._resolved:
            path = sysu_perms.locate(
                self.rand_perm_cam_file, self.root, required=self.draw == "official"
            )
            if path is not None:
                self._perms = sysu_perms.load(path)
            self._resolved = True
        return self._perms

    @property
    def rand_perm_cam(self) -> dict[int, dict[int, np.ndarray]] | None:
        perms = self.permutations()
        return None if perms is None else perms.perms

    @property
    def gallery_source(self) -> str:
        return SOURCE_OFFICIAL if self.permutations() is not None else SOURCE_SEEDS

    def gallery_info(self) -> dict[str, Any]:
        """What a run record stores as ``protocol_gallery``: the gallery ``source``
        (``"rand_perm_cam"`` or ``"seeds"``), the permutation file's ``rand_perm_cam_sha256``
        (null for the seeded draw, or permutations given in memory) and the ``seeds``."""
        perms = self.permutations()
        if perms is None:
            return {"source": SOURCE_SEEDS, "rand_perm_cam_sha256": None,
                    "seeds": list(self.trial_seeds)}  # fmt: skip
        return {"source": SOURCE_OFFICIAL, "rand_perm_cam_sha256": perms.sha256 or None,
                "seeds": None}  # fmt: skip

    def record_problems(self, record: dict[str, Any]) -> list[tuple[str, str]]:
        """A run record's ``protocol_gallery`` against this id's rule: the @2 ids need the
        official permutations (with their file's sha256), the seeded ids the seeds; the @1
        ids accept either, or none (records written before it existed)."""
        gallery = record.get("protocol_gallery")
        if self.draw == "either" and gallery is None:
            return []
        want = SOURCE_OFFICIAL if self.draw == "official" else SOURCE_SEEDS
        if not isinstance(gallery, dict):
            return [("$.protocol_gallery", f"missing; {self.id} records say where their "
                     f"galleries came from (source {want!r})")]  # fmt: skip
        source = gallery.get("source")
        if self.draw != "either" and source != want:
            return [("$.protocol_gallery.source",
                     f"{source!r}, but {self.id} draws its galleries from {want!r}")]  # fmt: skip
        if (
            source == SOURCE_OFFICIAL
            and self.draw == "official"
            and not isinstance(gallery.get("rand_perm_cam_sha256"), str)
        ):
            why = f"missing; {self.id} records name the permutation file by its sha256"
            return [("$.protocol_gallery.rand_perm_cam_sha256", why)]
        return []

    # -- trial galleries ------------------------------------------------------------------------
    def _groups(
        self, gallery_ids: np.ndarray, gallery_cams: np.ndarray, gallery_index: np.ndarray | None
    ) -> list[tuple[int, int, np.ndarray]]:
        """``(id, cam, members)`` in DDAG order (id ascending, cams in protocol order); members
        are candidate-gallery positions in folder order (``gallery_index`` or npz order)."""
        cams = np.asarray(self.gallery_cams, np.int64)
        sel = np.flatnonzero(np.isin(gallery_cams, cams))
        if not sel.size:
            return []
        rank = np.argmax(gallery_cams[sel, None] == cams[None, :], axis=1)  # protocol cam order
        order = np.lexsort((rank, gallery_ids[sel]))  # by id, then cam; stable: positions rise
        sel, ids, rank = sel[order], gallery_ids[sel][order], rank[order]
        starts = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | (rank[1:] != rank[:-1])])
        out = []
        groups = zip(np.split(sel, starts[1:]), ids[starts], rank[starts], strict=True)
        for members, pid, r in groups:
            if gallery_index is not None:
                members = members[np.argsort(gallery_index[members], kind="stable")]
            out.append((int(pid), int(cams[r]), members))
        return out

    def trial_galleries(
        self,
        gallery_ids: np.ndarray,
        gallery_cams: np.ndarray,
        gallery_index: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """The ten trial galleries as index arrays into the candidate gallery, each in its
        protocol's gallery order (the tie order; module docstring)."""
        groups = self._groups(gallery_ids, gallery_cams, gallery_index)
        perms = self.rand_perm_cam
        if perms is None:
            return self._seeded(groups)
        trials = []
        if self.draw == "official":  # get_testing_set.m: cameras, then identities
            cam_rank = {c: r for r, c in enumerate(self.gallery_cams)}
            groups = sorted(groups, key=lambda g: (cam_rank[g[1]], g[0]))
        for t in range(self.trials):
            chosen: list[int] = []
            for pid, cam, members in groups:
                chosen.extend(self._official(perms, t, pid, cam, members, gallery_index))
            picked = np.array(chosen, dtype=np.int64)
            trials.append(picked if self.draw == "official" else np.sort(picked))
        return trials

    def _seeded(self, groups: list[tuple[int, int, np.ndarray]]) -> list[np.ndarray]:
        trials = []
        items_of = [members.tolist() for _, _, members in groups]
        for seed in self.trial_seeds:
            rng = random.Random(seed)
            chosen: list[int] = []
            for items in items_of:
                if self.shots == 1:
                    chosen.append(rng.choice(items))
                else:
                    chosen.extend(rng.sample(items, min(self.shots, len(items))))
            picked = np.array(chosen, dtype=np.int64)
            trials.append(picked if self.draw == "seeded" else np.sort(picked))
        return trials

    def _official(self, perms, t, pid, cam, members, gallery_index) -> list[int]:
        perm = perms.get(cam, {}).get(pid)
        if perm is None:
            raise ValueError(
                f"rand_perm_cam has no permutation for identity {pid} in cam {cam}, but "
                "the gallery holds images of it"
            )
        if perm.shape[0] < self.trials:
            raise ValueError(
                f"rand_perm_cam{{{cam}}}{{{pid}}} has {perm.shape[0]} rows, expected "
                f"{self.trials} trials"
            )
        want = perm[t, : self.shots]
        if gallery_index is not None:
            where = {int(gallery_index[m]): int(m) for m in members}
            lost = [int(w) for w in want if int(w) not in where]
            if lost:
                raise ValueError(
                    f"key gallery_index: cam {cam} identity {pid} lacks folder "
                    f"position(s) {lost} that rand_perm_cam trial {t + 1} selects"
                )
            return [where[int(w)] for w in want]
        if len(members) != perm.shape[1]:
            raise ValueError(
                f"cam {cam} identity {pid}: the gallery holds {len(members)} images, "
                f"rand_perm_cam permutes {perm.shape[1]}; give the whole folder or "
                "the key gallery_index"
            )
        return [int(members[w]) for w in want]

    # -- scoring --------------------------------------------------------------------------------
    def score_split(self, **arrays: Any) -> Score:
        gallery_index = arrays.pop("gallery_index", None)
        unknown = sorted(set(arrays) - set(self.npz_keys))
        if unknown:
            raise TypeError(f"{self.id}: unexpected array(s) {', '.join(unknown)}")
        a = self.check_arrays(**arrays)
        bad_q = sorted(set(np.unique(a["query_cams"]).tolist()) - set(QUERY_CAMS))
        if bad_q:
            raise ValueError(
                f"key query_cams: cameras {bad_q}; SYSU-MM01 queries are the infrared images of "
                "cams 3 and 6"
            )
        bad_g = sorted(set(np.unique(a["gallery_cams"]).tolist()) - {1, 2, 4, 5})
        if bad_g:
            raise ValueError(
                f"key gallery_cams: cameras {bad_g}; the SYSU-MM01 candidate gallery is the "
                "visible images of cams 1, 2, 4, 5"
            )
        if gallery_index is not None:
            gallery_index = self.as_numpy(gallery_index).astype(np.int64).reshape(-1)
            if gallery_index.shape[0] != a["gallery_ids"].shape[0]:
                raise ValueError(
                    f"key gallery_index: expected shape ({a['gallery_ids'].shape[0]},), got "
                    f"{gallery_index.shape}"
                )
        trials = self.trial_galleries(a["gallery_ids"], a["gallery_cams"], gallery_index)
        if not trials[0].size:
            raise ValueError(
                f"key gallery_cams: no gallery image from cams {self.gallery_cams} ({self.id})"
            )
        results = evaluate(
            a["query_feat"], a["query_ids"], a["query_cams"],
            a["gallery_feat"], a["gallery_ids"], a["gallery_cams"],
            trials=trials, exclude=EXCLUDE, cmc="distinct", device=self.engine_device(a),
            block_size=self.block_size, product=self.product,
        )  # fmt: skip
        per_trial = [r.metrics() for r in results]
        return Score(metrics=mean_metrics(per_trial), per_trial=per_trial)


def _official_description(mode: str, cams: str, shots: str) -> str:
    return (
        f"IR queries (cams 3, 6) vs {shots} visible image(s) per identity and camera of cams "
        f"{cams} ({mode}); cam 2 excluded for cam-3 queries; the ten official galleries of "
        "rand_perm_cam.mat (--rand-perm-cam FILE, the data root or $MV2D_SYSU_RAND_PERM)"
    )


def _seeded_description(mode: str, cams: str) -> str:
    return (
        f"IR queries (cams 3, 6) vs one visible image per identity and camera of cams {cams} "
        f"({mode}); cam 2 excluded for cam-3 queries; ten galleries drawn as AGW/DDAG do "
        "(random.seed(t), t = 0..9); not the official galleries"
    )


def _legacy_description(cams: str, shots: str) -> str:
    return (
        f"AMBIGUOUS, kept for old records: {shots} visible image(s) per identity and camera of "
        f"cams {cams}; galleries from rand_perm_cam.mat when one is found, else seeds 0..9 "
        "(records before protocol_gallery do not say which). New runs: use @2 (official) or "
        "single-shot-seeded@1"
    )


# -- @2: the official galleries ------------------------------------------------------------------
class OfficialAllSearchSingleShot(SysuProtocol):
    """SYSU-MM01 all-search single-shot, the official ten galleries (rand_perm_cam.mat)."""

    id: ClassVar[str] = "sysu-mm01/all-search/single-shot@2"
    description: ClassVar[str] = _official_description("all-search", "1, 2, 4, 5", "one")
    gallery_cams = (1, 2, 4, 5)
    shots = 1


class OfficialAllSearchMultiShot(SysuProtocol):
    """SYSU-MM01 all-search multi-shot (ten images per identity and camera), official."""

    id: ClassVar[str] = "sysu-mm01/all-search/multi-shot@2"
    description: ClassVar[str] = _official_description("all-search", "1, 2, 4, 5", "ten")
    gallery_cams = (1, 2, 4, 5)
    shots = MULTI_SHOT


class OfficialIndoorSearchSingleShot(SysuProtocol):
    """SYSU-MM01 indoor-search single-shot (cams 1, 2), the official ten galleries."""

    id: ClassVar[str] = "sysu-mm01/indoor-search/single-shot@2"
    description: ClassVar[str] = _official_description("indoor-search", "1, 2", "one")
    gallery_cams = (1, 2)
    shots = 1


class OfficialIndoorSearchMultiShot(SysuProtocol):
    """SYSU-MM01 indoor-search multi-shot (cams 1, 2), the official ten galleries."""

    id: ClassVar[str] = "sysu-mm01/indoor-search/multi-shot@2"
    description: ClassVar[str] = _official_description("indoor-search", "1, 2", "ten")
    gallery_cams = (1, 2)
    shots = MULTI_SHOT


# -- the AGW/DDAG seeded single-shot draw ---------------------------------------------------------
class SeededAllSearchSingleShot(SysuProtocol):
    """SYSU-MM01 all-search single-shot with DDAG's seeded galleries (random.seed(0..9))."""

    id: ClassVar[str] = "sysu-mm01/all-search/single-shot-seeded@1"
    description: ClassVar[str] = _seeded_description("all-search", "1, 2, 4, 5")
    gallery_cams = (1, 2, 4, 5)
    shots = 1
    draw = "seeded"


class SeededIndoorSearchSingleShot(SysuProtocol):
    """SYSU-MM01 indoor-search single-shot with DDAG's seeded galleries."""

    id: ClassVar[str] = "sysu-mm01/indoor-search/single-shot-seeded@1"
    description: ClassVar[str] = _seeded_description("indoor-search", "1, 2")
    gallery_cams = (1, 2)
    shots = 1
    draw = "seeded"


# -- @1: ambiguous, kept scorable ------------------------------------------------------------------
class AllSearchSingleShot(SysuProtocol):
    """SYSU-MM01 all-search single-shot@1 (ambiguous gallery source; see the module docstring)."""

    id: ClassVar[str] = "sysu-mm01/all-search/single-shot@1"
    description: ClassVar[str] = _legacy_description("1, 2, 4, 5", "one")
    metrics: ClassVar[tuple[Metric, ...]] = legacy_metrics(REID_METRICS + IMAGE_CMC_METRICS)
    gallery_cams = (1, 2, 4, 5)
    shots = 1
    draw = "either"


class AllSearchMultiShot(SysuProtocol):
    """SYSU-MM01 all-search multi-shot@1 (ambiguous gallery source)."""

    id: ClassVar[str] = "sysu-mm01/all-search/multi-shot@1"
    description: ClassVar[str] = _legacy_description("1, 2, 4, 5", "ten")
    metrics: ClassVar[tuple[Metric, ...]] = legacy_metrics(REID_METRICS + IMAGE_CMC_METRICS)
    gallery_cams = (1, 2, 4, 5)
    shots = MULTI_SHOT
    draw = "either"


class IndoorSearchSingleShot(SysuProtocol):
    """SYSU-MM01 indoor-search single-shot@1 (ambiguous gallery source)."""

    id: ClassVar[str] = "sysu-mm01/indoor-search/single-shot@1"
    description: ClassVar[str] = _legacy_description("1, 2", "one")
    metrics: ClassVar[tuple[Metric, ...]] = legacy_metrics(REID_METRICS + IMAGE_CMC_METRICS)
    gallery_cams = (1, 2)
    shots = 1
    draw = "either"


class IndoorSearchMultiShot(SysuProtocol):
    """SYSU-MM01 indoor-search multi-shot@1 (ambiguous gallery source)."""

    id: ClassVar[str] = "sysu-mm01/indoor-search/multi-shot@1"
    description: ClassVar[str] = _legacy_description("1, 2", "ten")
    metrics: ClassVar[tuple[Metric, ...]] = legacy_metrics(REID_METRICS + IMAGE_CMC_METRICS)
    gallery_cams = (1, 2)
    shots = MULTI_SHOT
    draw = "either"
