"""RegDB protocols: visible-to-thermal and thermal-to-visible, ten trials.

Followed: the AGW/DDAG code (mangye16, ``test.py`` and ``eval_metrics.eval_regdb``): for trial
``t`` the model trained on ``idx/train_*_t.txt`` is tested on ``idx/test_visible_t.txt`` and
``idx/test_thermal_t.txt``; visible-to-thermal queries with the visible test images against the
thermal ones, thermal-to-visible the reverse (AGW's ``--tvsearch``). The two modalities come from
different cameras, so nothing is excluded; CMC is the standard image-level CMC (the rank of the
first true-match image, AGW's ``eval_regdb``), mAP and mINP rank images, a query without a match
is left out. Cosine distance of L2-normalised features; ties keep the gallery order (stable sort).
Reported: rank-1, 5, 10, 20 (AGW prints these four), mAP and mINP. The image-level CMC is the
official one here, so there is no separate ``rank-k-image``.

Trials and leaderboards (how to count): every RegDB trial is a separate training run, so one run
record holds one trial (``benchmark.trial`` = 1..10) and :meth:`score` scores that trial's
predictions only (``trials = 1``; ``Score.per_trial`` has its one entry);
:meth:`score_trials` scores the ten trials' predictions at once (``mv2d-bench score`` with one
``--predictions`` per trial) and reports each trial and the ten-trial mean. A leaderboard entry
needs all ten trials: ``required_seeds = 10`` and ``required_trials = (1, ..., 10)``. The
leaderboard build groups records by (objective, params, model, config, protocol) and counts
*distinct* ``benchmark.trial`` values, not records: an entry is ranked once each of trials
1..10 has a record (when a trial has several records, e.g. several seeds, they are averaged
first), and its value is the mean over the ten trials (each trial weighted equally), with the
ten per-trial values kept for the spread.

Camera codes (the loader's, AGW's ``eval_regdb``): visible = 1, thermal = 2. :meth:`score`
checks them, so swapped query and gallery files fail loudly instead of scoring the wrong
direction.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mv2d_bench.leaderboards.protocols.base import Metric, Score
from mv2d_bench.leaderboards.reid_eval import REID_METRICS, ReidProtocol, evaluate, legacy_metrics

VISIBLE_CAM, THERMAL_CAM = 1, 2
CAM_NAMES = {VISIBLE_CAM: "visible (1)", THERMAL_CAM: "thermal (2)"}


class RegdbProtocol(ReidProtocol):
    benchmark: ClassVar[str] = "regdb"
    metrics: ClassVar[tuple[Metric, ...]] = legacy_metrics(REID_METRICS)
    """rank-1, 5, 10, 20 (image-level: RegDB's official CMC), mAP, mINP; rank-5 was added after
    the first records and is optional for them."""
    trials: ClassVar[int] = 1
    required_seeds: ClassVar[int] = 10
    required_trials: ClassVar[tuple[int, ...]] = tuple(range(1, 11))
    """Distinct ``benchmark.trial`` values a leaderboard entry needs (see module docstring)."""
    query_cam: ClassVar[int] = VISIBLE_CAM
    gallery_cam: ClassVar[int] = THERMAL_CAM

    def score_split(self, **arrays: Any) -> Score:
        unknown = sorted(set(arrays) - set(self.npz_keys))
        if unknown:
            raise TypeError(f"{self.id}: unexpected array(s) {', '.join(unknown)}")
        a = self.check_arrays(**arrays)
        for side, want in (("query", self.query_cam), ("gallery", self.gallery_cam)):
            cams = np.unique(a[f"{side}_cams"]).tolist()
            if cams != [want]:
                raise ValueError(
                    f"key {side}_cams: cameras {cams}; {self.id} expects {side} images from the "
                    f"{CAM_NAMES[want]} camera only (RegDB codes: visible 1, thermal 2)"
                )
        (result,) = evaluate(
            a["query_feat"], a["query_ids"], a["query_cams"],
            a["gallery_feat"], a["gallery_ids"], a["gallery_cams"],
            exclude=(), cmc="image",
            device=self.engine_device(a), block_size=self.block_size, product=self.product,
        )  # fmt: skip
        metrics = result.metrics()
        return Score(metrics=metrics, per_trial=[dict(metrics)])

    def score_trials(self, trials: list[dict[str, Any]]) -> Score:
        """The trials' arrays (trial ``t`` = ``trials[t - 1]``) each scored as :meth:`score`
        does: ``per_trial`` holds each trial's metrics, ``metrics`` their mean (each trial
        weighs the same, as a leaderboard entry averages them)."""
        per = []
        for t, arrays in enumerate(trials, start=1):
            try:
                per.append(self.score(**arrays).metrics)
            except ValueError as exc:
                raise ValueError(f"trial {t}: {exc}") from exc
        if not per:
            raise ValueError(f"{self.id}: no trial predictions to score")
        keys = per[0].keys()
        return Score(metrics={k: float(np.mean([m[k] for m in per])) for k in keys}, per_trial=per)


class VisibleToThermal(RegdbProtocol):
    """RegDB visible-to-thermal: visible test images query the thermal test images of the same
    trial. One trial per run; a leaderboard entry needs trials 1..10 (module docstring)."""

    id: ClassVar[str] = "regdb/visible-to-thermal@1"
    description: ClassVar[str] = (
        "visible queries vs thermal gallery of one trial's 206 test identities; a leaderboard "
        "entry averages trials 1..10"
    )
    query_cam = VISIBLE_CAM
    gallery_cam = THERMAL_CAM


class ThermalToVisible(RegdbProtocol):
    """RegDB thermal-to-visible: thermal test images query the visible test images."""

    id: ClassVar[str] = "regdb/thermal-to-visible@1"
    description: ClassVar[str] = (
        "thermal queries vs visible gallery of one trial's 206 test identities; a leaderboard "
        "entry averages trials 1..10"
    )
    query_cam = THERMAL_CAM
    gallery_cam = VISIBLE_CAM
