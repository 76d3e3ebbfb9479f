"""The fusions of the MVC models (``model.fusion``): p(y | z_S) for any view subset S.

========================  ==================================================================
``relation-full``         MvNNcor's relation module f_psi (outer product of every view pair,
                          one shared Linear(d^2 -> d) + BN + ReLU) and its one shared
                          per-view classifier; :mod:`.relation_full`
``relation-lowrank``      a rank-r bilinear pair relation averaged over the other views, learnt
                          view weights (this package's MVC fusion before ``model.fusion``)
``concat``                the views side by side (absent views zero), then an MLP
``mean``                  the mean of the present views, then an MLP
========================  ==================================================================

Every fusion computes the fused prediction and all leave-one-out predictions in one batched
call (:func:`~.base.fuse_views`), with live or detached parameters per row (:mod:`.base`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mv2d_bench.models.mvc_fusion.base import FusedViews, FusionOutput, SubsetFusion, fuse_views
from mv2d_bench.models.mvc_fusion.concat import ConcatFusion
from mv2d_bench.models.mvc_fusion.mean import MeanFusion
from mv2d_bench.models.mvc_fusion.relation_full import RelationFullFusion
from mv2d_bench.models.mvc_fusion.relation_lowrank import RelationLowRankFusion

FUSIONS: dict[str, type[SubsetFusion]] = {
    "relation-full": RelationFullFusion,
    "relation-lowrank": RelationLowRankFusion,
    "concat": ConcatFusion,
    "mean": MeanFusion,
}


def build_fusion(
    name: str,
    n_views: int,
    dim: int,
    num_classes: int,
    *,
    hidden: int,
    dropout: float,
    rank: int = 16,
    weighting: nn.Module | None = None,
    init_std: float = 0.0,
) -> SubsetFusion:
    """The fusion ``name`` for n views of width ``dim`` (``hidden``: its classifier's width)."""
    if name not in FUSIONS:
        raise ValueError(
            f"config: 'model.fusion' must be one of {', '.join(FUSIONS)}; got {name!r}"
        )
    kwargs: dict[str, Any] = {"hidden": hidden, "dropout": dropout}
    if name == "relation-lowrank":
        kwargs["rank"] = rank
    if name == "relation-full":
        kwargs.update(weighting=weighting, init_std=init_std)
    return FUSIONS[name](n_views, dim, num_classes, **kwargs)


__all__ = [
    "FUSIONS",
    "ConcatFusion",
    "FusedViews",
    "FusionOutput",
    "MeanFusion",
    "RelationFullFusion",
    "RelationLowRankFusion",
    "SubsetFusion",
    "build_fusion",
    "fuse_views",
]
