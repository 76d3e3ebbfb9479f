"""``multiview-ib``: the MV2D paper's multi-view classification network (``model.name``).

Per view i: an MvNNcor-style MLP encoder E_theta (``hidden``, default 512-256: the widths the
MV2D paper uses; MvNNcor's own code uses 400-200) gives the observation v_i; a Gaussian
bottleneck E_phi gives z_i; linear heads give P_vi = p(y | v_i) and P_zi = p(y | z_i); a fusion
(``fusion``, :mod:`mv2d_bench.models.mvc_fusion`) gives P_Z = p(y | z_1..z_n) and, when the
objective needs them, the leave-one-out P_Z\\i, all subsets in one batched call.

``bottleneck = False`` is the "no bottleneck" ablation (z_i = v_i, P_zi = P_vi, fusion on v).
``distill_through_heads = False`` (default) lets the objective's terms reach only the encoders and
bottlenecks (the paper's Eq. 9): the objective sees the heads and the fusion through detached
parameters (:class:`~mv2d_bench.models.mvc_outputs.MvcOutputs`); ``True`` lets them train the
heads and the fusion as well (this model's behaviour before the switch existed).

This network was called ``mvnncor`` before; that name is now the released MvNNcor
(:mod:`mv2d_bench.models.mvnncor`). All per-view layers run batched over the views
(:mod:`mv2d_bench.models.perview`).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from mv2d_bench.models.mvc_fusion import build_fusion, fuse_views
from mv2d_bench.models.mvc_network import MvcNetwork
from mv2d_bench.models.mvc_outputs import MvcOutputs
from mv2d_bench.models.perview import ViewEncoders, ViewGaussianBottleneck, ViewLinear
from mv2d_bench.views import StackedList

OBJECTIVE_LOGITS = ("obs_logits", "rep_logits", "fused_logits", "loo_logits")


class MultiViewIB(MvcNetwork):
    name = "multiview-ib"

    def __init__(
        self,
        view_dims: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (512, 256),
        dropout: float = 0.5,
        bottleneck: bool = True,
        z_dim: int = 128,
        bottleneck_hidden: int = 128,
        min_std: float = 1e-4,
        fusion: str = "relation-lowrank",
        relation_rank: int = 16,
        classifier_hidden: int = 128,
        fusion_dropout: float = 0.5,
        distill_through_heads: bool = False,
    ) -> None:
        super().__init__(view_dims, num_classes, hidden, distill_through_heads)
        n, view_dims = self.n_views, self.view_dims
        self.use_bottleneck = bool(bottleneck)
        obs_dim = int(hidden[-1])
        rep_dim = int(z_dim) if bottleneck else obs_dim
        self.encoders = ViewEncoders(view_dims, hidden, dropout)
        self.obs_heads = ViewLinear(n, obs_dim, num_classes)
        if bottleneck:
            self.bottlenecks = ViewGaussianBottleneck(
                n, obs_dim, rep_dim, bottleneck_hidden, min_std
            )
            self.rep_heads = ViewLinear(n, rep_dim, num_classes)
        self.fusion = build_fusion(
            fusion,
            n,
            rep_dim,
            num_classes,
            hidden=classifier_hidden,
            dropout=fusion_dropout,
            rank=relation_rank,
        )

    def forward(
        self,
        views: Sequence[Tensor],
        needs: frozenset[str] | set[str] = frozenset(),
        present: Tensor | None = None,
    ) -> MvcOutputs:
        split = self.split_streams(views)
        v = self.encoders(views)  # (B, n, d_v)
        v_t = v.transpose(0, 1)  # (n, B, d_v)
        obs_logits = self.obs_heads(v_t)
        out = MvcOutputs(obs=list(v.unbind(1)), obs_stack=v_t, task_obs_logits=obs_logits)
        obj_obs = self.obs_heads(v_t, frozen=True) if split and "obs_logits" in needs else None
        out.obs_logits = StackedList(obs_logits if obj_obs is None else obj_obs)
        if self.use_bottleneck:
            z, mean, std = self.bottlenecks(v_t)  # (n, B, d_z) each
            rep_logits = self.rep_heads(z)
            out.rep = list(z.unbind(0))
            out.rep_mean, out.rep_std = list(mean.unbind(0)), list(std.unbind(0))
            out.rep_stack, out.task_rep_logits = z, rep_logits
            obj_rep = self.rep_heads(z, frozen=True) if split and "rep_logits" in needs else None
            out.rep_logits = StackedList(rep_logits if obj_rep is None else obj_rep)
            reps = z.transpose(0, 1)
        else:
            out.rep, out.rep_stack, out.rep_logits = out.obs, v_t, out.obs_logits
            reps = v
        fused = fuse_views(
            self.fusion,
            reps,
            present,
            loo="loo_logits" in needs,
            split=split,
            need_fused="fused_logits" in needs,
        )
        out.task_fused_logits, out.task_view_logits = fused.fused, fused.view_logits
        out.fused_logits, out.loo_logits = fused.fused_for_objective, fused.loo
        return out
