"""``synthetic-mv``: multi-view data with a known information structure (no files needed).

Every sample has a class y (balanced) and latent factors of four kinds:

* **shared** (``shared_dim``): one vector seen by every view;
* **partial** (``partial_dim``): one vector per group of ``partial_group`` consecutive views,
  seen by the views of that group only;
* **specific** (``specific_dim``): one vector per view, seen by that view only;
* **nuisance** (``nuisance_dim``): one vector per view, independent of the label.

A factor kind named in ``label_factors`` carries the label: its vector is drawn around a class
mean ``strength * m_y`` (``m_y ~ N(0, I)`` per class, fixed by the seed) plus N(0, I) noise;
kinds not named are pure N(0, I). View i observes ``[shared, partial_g(i), specific_i,
nuisance_i]`` through its own random linear map to ``dims[i]`` features, optionally a ``tanh``,
plus ``noise`` x N(0, I). Everything is a deterministic function of ``seed``.

:meth:`SyntheticMV.corrupted_views` re-draws the view-specific factors of chosen samples around
the mean of a *random* class, leaving every other factor and the noise as they were: a model
that relies on view-specific information loses accuracy on such data, one that relies on what
views share does not (the MV2D paper's claim; see ``benchmarks/synthetic_corruption.py``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders.base import DataCard
from mv2d_bench.loaders.mvc import MvcBenchmark, MvcData

KINDS = ("shared", "partial", "specific", "nuisance")
DEFAULTS: dict[str, Any] = {
    "n_views": 4,
    "samples": 1200,
    "num_classes": 4,
    "dims": 32,
    "shared_dim": 4,
    "partial_dim": 4,
    "specific_dim": 4,
    "nuisance_dim": 8,
    "partial_group": 2,
    "label_factors": "shared,partial,specific",
    "shared_strength": 1.0,
    "partial_strength": 1.0,
    "specific_strength": 1.5,
    "noise": 0.5,
    "nonlinear": True,
    "seed": 0,
}


class SyntheticMV(MvcBenchmark):
    name: ClassVar[str] = "synthetic-mv"
    version: ClassVar[int] = 1
    card: ClassVar[DataCard] = DataCard(
        citation="mv2d-bench synthetic multi-view generator (this package)",
        license="MIT (generated data)",
        url="generated in memory; nothing to download",
        layout="none (no data root is read)",
    )
    options_doc: ClassVar[dict[str, str]] = {
        "n_views": "number of views (>= 1), default 4",
        "samples": "number of samples (>= 10 per class), default 1200",
        "num_classes": "number of classes (>= 2), default 4",
        "dims": "features per view: one int for all, or a list / comma-separated ints, default 32",
        "shared_dim": "size of the factor shared by all views, default 4",
        "partial_dim": "size of the factor shared by each group of views, default 4",
        "specific_dim": "size of each view's own factor, default 4",
        "nuisance_dim": "size of each view's label-independent factor, default 8",
        "partial_group": "views per group sharing a partial factor, default 2",
        "label_factors": "factor kinds that carry the label (comma-separated among shared, "
        "partial, specific), default shared,partial,specific",
        "shared_strength": "class separation of the shared factor, default 1.0",
        "partial_strength": "class separation of the partial factors, default 1.0",
        "specific_strength": "class separation of the specific factors, default 1.5",
        "noise": "std of the per-feature observation noise, default 0.5",
        "nonlinear": "apply tanh to each view's linear map, default true",
        "seed": "generator seed, default 0",
    }

    def __init__(self, root: str | os.PathLike | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.params = self._parse({**DEFAULTS, **options})
        self._cache: dict[str, Any] | None = None

    def resolve_root(self, root: str | os.PathLike | None) -> Path | None:
        return None  # generated in memory

    # -- options ----------------------------------------------------------------------------
    def _parse(self, o: dict[str, Any]) -> dict[str, Any]:
        def as_int(key: str, low: int) -> int:
            v = o[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(
                    f"{self.name}: option {key}: expected an integer >= {low}, got {v!r}"
                )
            return int(v)

        def as_float(key: str, low: float = 0.0) -> float:
            v = o[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < low:
                raise ValueError(
                    f"{self.name}: option {key}: expected a number >= {low}, got {v!r}"
                )
            return float(v)

        p: dict[str, Any] = {
            "n_views": as_int("n_views", 1),
            "num_classes": as_int("num_classes", 2),
        }
        p["samples"] = as_int("samples", 10 * p["num_classes"])
        for key in ("shared_dim", "partial_dim", "specific_dim", "nuisance_dim"):
            p[key] = as_int(key, 0)
        p["partial_group"] = as_int("partial_group", 1)
        p["seed"] = as_int("seed", 0)
        for key in ("shared_strength", "partial_strength", "specific_strength", "noise"):
            p[key] = as_float(key)
        if not isinstance(o["nonlinear"], bool):
            raise ValueError(f"{self.name}: option nonlinear: expected true or false")
        p["nonlinear"] = o["nonlinear"]
        dims = o["dims"]
        if isinstance(dims, str):
            dims = [d.strip() for d in dims.split(",") if d.strip()]
            try:
                dims = [int(d) for d in dims]
            except ValueError:
                raise ValueError(
                    f"{self.name}: option dims: expected integers, got {o['dims']!r}"
                ) from None
        if isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
            dims = [int(dims)] * p["n_views"]
        if (
            not isinstance(dims, (list, tuple))
            or len(dims) != p["n_views"]
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims)
        ):
            raise ValueError(
                f"{self.name}: option dims: expected one int >= 1 or {p['n_views']} of them "
                f"(one per view), got {o['dims']!r}"
            )
        p["dims"] = [int(d) for d in dims]
        lf = o["label_factors"]
        names = [s.strip() for s in lf.split(",")] if isinstance(lf, str) else list(lf)
        names = [n for n in names if n]
        bad = [n for n in names if n not in KINDS[:3]]
        if bad or not names:
            raise ValueError(
                f"{self.name}: option label_factors: expected names among shared, partial, "
                f"specific, got {lf!r}"
            )
        p["label_factors"] = names
        if sum(p[f"{k}_dim"] for k in KINDS) == 0:
            raise ValueError(f"{self.name}: every factor size is 0; expected at least one > 0")
        return p

    @property
    def n_views(self) -> int:
        return self.params["n_views"]

    # -- generation -------------------------------------------------------------------------
    def _generate(self) -> dict[str, Any]:
        if self._cache is not None:
            return self._cache
        p = self.params
        n, c, v = p["samples"], p["num_classes"], p["n_views"]
        groups = [i // p["partial_group"] for i in range(v)]
        n_groups = max(groups) + 1
        struct = np.random.default_rng([p["seed"], 0])

        def means(kind: str, count: int) -> np.ndarray:
            d = p[f"{kind}_dim"]
            m = struct.standard_normal((count, c, d))
            return m * p[f"{kind}_strength"] if kind in p["label_factors"] else m * 0.0

        mu = {
            "shared": means("shared", 1),
            "partial": means("partial", n_groups),
            "specific": means("specific", v),
        }
        width = sum(p[f"{k}_dim"] for k in KINDS)
        maps = [struct.standard_normal((width, d)) / np.sqrt(width) for d in p["dims"]]

        draw = np.random.default_rng([p["seed"], 1])
        labels = draw.permutation(np.arange(n) % c).astype(np.int64)
        shared = mu["shared"][0][labels] + draw.standard_normal((n, p["shared_dim"]))
        partial = mu["partial"][:, labels] + draw.standard_normal((n_groups, n, p["partial_dim"]))
        specific = mu["specific"][:, labels] + draw.standard_normal((v, n, p["specific_dim"]))
        nuisance = draw.standard_normal((v, n, p["nuisance_dim"]))
        noise = [draw.standard_normal((n, d)) * p["noise"] for d in p["dims"]]
        self._cache = {
            "labels": labels,
            "groups": groups,
            "mu": mu,
            "maps": maps,
            "shared": shared,
            "partial": partial,
            "specific": specific,
            "nuisance": nuisance,
            "noise": noise,
        }
        return self._cache

    def _observe(
        self, g: dict[str, Any], specific: np.ndarray, rows: np.ndarray
    ) -> list[np.ndarray]:
        views = []
        for i in range(self.n_views):
            h = np.concatenate(
                [
                    g["shared"][rows],
                    g["partial"][g["groups"][i]][rows],
                    specific[i][rows],
                    g["nuisance"][i][rows],
                ],
                axis=1,
            )
            x = h @ g["maps"][i]
            if self.params["nonlinear"]:
                x = np.tanh(x)
            views.append(x + g["noise"][i][rows])
        return views

    def load(self) -> MvcData:
        g = self._generate()
        rows = np.arange(self.params["samples"])
        views = self._observe(g, g["specific"], rows)
        h = hashlib.sha256()
        for x in [*views, g["labels"]]:
            h.update(np.ascontiguousarray(x, dtype="<f8").tobytes())
        p = self.params
        return MvcData(
            views=views,
            labels=g["labels"].copy(),
            view_names=[f"view{i + 1}" for i in range(self.n_views)],
            num_classes=p["num_classes"],
            source=f"synthetic-mv(seed={p['seed']})",
            data_sha256=h.hexdigest(),
            info={"generator": {k: (list(v) if isinstance(v, list) else v) for k, v in p.items()}},
        )

    def corrupted_views(self, indices: Any, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
        """Views and labels of samples ``indices`` with their view-specific factors re-drawn.

        Each (sample, view) gets a specific factor around the class mean of a class drawn
        uniformly at random (independent of its label and across views); shared, partial and
        nuisance factors and the observation noise are unchanged.
        """
        g = self._generate()
        rows = np.asarray(indices, dtype=np.int64)
        p = self.params
        rng = np.random.default_rng([p["seed"], 2, int(seed)])
        fake = rng.integers(0, p["num_classes"], size=(self.n_views, len(rows)))
        specific = g["specific"].copy()
        for i in range(self.n_views):
            resid = g["specific"][i][rows] - g["mu"]["specific"][i][g["labels"][rows]]
            specific[i][rows] = g["mu"]["specific"][i][fake[i]] + resid
        return self._observe(g, specific, rows), g["labels"][rows].copy()

    def verify(self) -> dict[str, Any]:
        data = self.load()
        counts = data.class_counts()
        return {
            "benchmark": self.name,
            "root": None,
            "ok": True,
            "checks": [
                {
                    "name": "generated",
                    "ok": True,
                    "detail": f"{data.n_samples} samples, "
                    f"{len(data.views)} views {data.view_dims}, classes {counts}",
                },
            ],
        }
