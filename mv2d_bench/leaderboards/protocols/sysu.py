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
  percentages averaged over the ten trials, each trial in ``Score.per_trial``.
- Ties: stable sort on the cosine distance; equal distances keep the candidate-gallery order.

Trial galleries are drawn in one of two ways:

1. **Published seeds** (default): trial ``t`` (0..9) uses seed ``TRIAL_SEEDS[t]`` =
   ``(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)``, Python's ``random.Random(seed)``, going through the
   (identity, camera) groups by identity ascending and, within an identity, cameras in the order
   1, 2, 4, 5, and calling ``choice(images)`` (single-shot) or ``sample(images, min(10, n))``
   (multi-shot) on the group's images in file-name order. For single-shot this is exactly DDAG's
   ``random.seed(trial); random.choice(sorted(files))`` loop, so the galleries are the same
   images DDAG/AGW score when the candidate gallery holds every visible test image.
2. **Official permutations**: when constructed with ``rand_perm_cam`` (read by
   :meth:`mv2d_bench.loaders.sysu.SysuMM01.rand_perm_cam` from the data root's
   ``rand_perm_cam.mat``), trial ``t`` takes the first one (ten) entries of row ``t`` of
   ``rand_perm_cam{cam}{id}``, the positions of images in the identity's folder (file-name order).
   The npz key ``gallery_index`` gives each gallery image's position in its folder; without it
   every group of the npz must hold the whole folder in file-name order. (The released images
   are numbered ``0001.jpg`` .. ``nnnn.jpg`` in each folder, so position ``k - 1`` is the file
   ``k``: the same image other Python ports pick by formatting the permutation value as
   ``cam<c>/<id:04d>/<k:04d>``.)

The npz holds the FULL candidate gallery (every visible test image with its camera, as
``SysuMM01.load().gallery`` lists it); the protocol draws the ten galleries from it.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.leaderboards.protocols.base import Score
from mv2d_bench.leaderboards.reid_eval import ReidProtocol, evaluate, mean_metrics

TRIAL_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
QUERY_CAMS = (3, 6)
EXCLUDE = ((3, 2),)
MULTI_SHOT = 10


class SysuProtocol(ReidProtocol):
    benchmark: ClassVar[str] = "sysu-mm01"
    trials: ClassVar[int] = 10
    required_seeds: ClassVar[int] = 1
    trial_seeds: ClassVar[tuple[int, ...]] = TRIAL_SEEDS
    gallery_cams: ClassVar[tuple[int, ...]] = (1, 2, 4, 5)
    shots: ClassVar[int] = 1
    optional_npz_keys: ClassVar[dict[str, str]] = {
        "gallery_index": "(G,) int position of each gallery image in its cam/id folder, "
        "file-name order (needed with rand_perm_cam.mat when the gallery is not whole folders)",
    }

    def __init__(
        self,
        rand_perm_cam: dict[int, dict[int, np.ndarray]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rand_perm_cam = rand_perm_cam

    @property
    def gallery_source(self) -> str:
        return "rand_perm_cam.mat" if self.rand_perm_cam is not None else "seeds 0..9"

    # -- trial galleries ------------------------------------------------------------------------
    def _groups(
        self, gallery_ids: np.ndarray, gallery_cams: np.ndarray, gallery_index: np.ndarray | None
    ) -> list[tuple[int, int, np.ndarray]]:
        """``(id, cam, members)`` in DDAG order (id ascending, cams in protocol order); members
        are candidate-gallery positions in folder order (``gallery_index`` or npz order)."""
        cam_rank = {c: r for r, c in enumerate(self.gallery_cams)}
        out = []
        in_cams = np.isin(gallery_cams, self.gallery_cams)
        keys = sorted(
            {
                (int(i), cam_rank[int(c)])
                for i, c in zip(gallery_ids[in_cams], gallery_cams[in_cams], strict=True)
            }
        )
        for pid, r in keys:
            cam = self.gallery_cams[r]
            members = np.flatnonzero((gallery_ids == pid) & (gallery_cams == cam))
            if gallery_index is not None:
                members = members[np.argsort(gallery_index[members], kind="stable")]
            out.append((pid, cam, members))
        return out

    def trial_galleries(
        self,
        gallery_ids: np.ndarray,
        gallery_cams: np.ndarray,
        gallery_index: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """The ten trial galleries as sorted index arrays into the candidate gallery."""
        groups = self._groups(gallery_ids, gallery_cams, gallery_index)
        trials = []
        if self.rand_perm_cam is None:
            for seed in self.trial_seeds:
                rng = random.Random(seed)
                chosen: list[int] = []
                for _, _, members in groups:
                    items = [int(m) for m in members]
                    if self.shots == 1:
                        chosen.append(rng.choice(items))
                    else:
                        chosen.extend(rng.sample(items, min(self.shots, len(items))))
                trials.append(np.sort(np.array(chosen, dtype=np.int64)))
            return trials
        for t in range(self.trials):
            chosen = []
            for pid, cam, members in groups:
                perm = self.rand_perm_cam.get(cam, {}).get(pid)
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
                    chosen.extend(where[int(w)] for w in want)
                else:
                    if len(members) != perm.shape[1]:
                        raise ValueError(
                            f"cam {cam} identity {pid}: the gallery holds {len(members)} images, "
                            f"rand_perm_cam permutes {perm.shape[1]}; give the whole folder or "
                            "the key gallery_index"
                        )
                    chosen.extend(int(members[w]) for w in want)
            trials.append(np.sort(np.array(chosen, dtype=np.int64)))
        return trials

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
            gallery_index = np.asarray(gallery_index).astype(np.int64).reshape(-1)
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
            trials=trials, exclude=EXCLUDE, cmc="distinct",
            device=self.engine_device(a), dtype=self.dtype, block_size=self.block_size,
        )  # fmt: skip
        per_trial = [r.metrics() for r in results]
        return Score(metrics=mean_metrics(per_trial), per_trial=per_trial)


class AllSearchSingleShot(SysuProtocol):
    """SYSU-MM01 all-search single-shot: gallery one image per identity from each of cams 1, 2,
    4, 5; ten trials with seeds 0..9 (or rand_perm_cam.mat). See the module docstring."""

    id: ClassVar[str] = "sysu-mm01/all-search/single-shot@1"
    description: ClassVar[str] = (
        "IR queries (cams 3, 6) vs one visible image per identity and camera of cams 1, 2, 4, 5; "
        "cam 2 excluded for cam-3 queries; 10 trials (seeds 0..9)"
    )
    gallery_cams = (1, 2, 4, 5)
    shots = 1


class AllSearchMultiShot(SysuProtocol):
    """SYSU-MM01 all-search multi-shot: ten images per identity and camera (cams 1, 2, 4, 5)."""

    id: ClassVar[str] = "sysu-mm01/all-search/multi-shot@1"
    description: ClassVar[str] = (
        "IR queries (cams 3, 6) vs ten visible images per identity and camera of cams 1, 2, 4, 5; "
        "cam 2 excluded for cam-3 queries; 10 trials (seeds 0..9)"
    )
    gallery_cams = (1, 2, 4, 5)
    shots = MULTI_SHOT


class IndoorSearchSingleShot(SysuProtocol):
    """SYSU-MM01 indoor-search single-shot: one image per identity from each of cams 1, 2."""

    id: ClassVar[str] = "sysu-mm01/indoor-search/single-shot@1"
    description: ClassVar[str] = (
        "IR queries (cams 3, 6) vs one visible image per identity and camera of cams 1, 2; "
        "cam 2 excluded for cam-3 queries; 10 trials (seeds 0..9)"
    )
    gallery_cams = (1, 2)
    shots = 1


class IndoorSearchMultiShot(SysuProtocol):
    """SYSU-MM01 indoor-search multi-shot: ten images per identity and camera (cams 1, 2)."""

    id: ClassVar[str] = "sysu-mm01/indoor-search/multi-shot@1"
    description: ClassVar[str] = (
        "IR queries (cams 3, 6) vs ten visible images per identity and camera of cams 1, 2; "
        "cam 2 excluded for cam-3 queries; 10 trials (seeds 0..9)"
    )
    gallery_cams = (1, 2)
    shots = MULTI_SHOT
