"""``mvnncor``: MvNNcor (Xu et al., "Deep Embedded Complementary and Interactive Information for
Multi-view Classification", AAAI 2020) as released in github.com/xujinglin/MvNNcor.

The network (``models/network_MvNNcor.py`` there, ``fea_out = 200``, ``fea_com = 300``):

* per view an MLP ``d_i -> 2 fea_out -> fea_out``: Linear, BatchNorm1d, ReLU, Dropout(0.5),
  Linear, BatchNorm1d, ReLU (``hidden = [400, 200]``) - the view features f_i;
* the relation module f_psi and ONE classifier shared by all views, fed
  ``[f_k, f_psi(f_k, f_j) for j != k]``: ``Linear(n fea_out, fea_com) BN ReLU Dropout
  Linear(fea_com, C) BN(C)`` - :class:`~mv2d_bench.models.mvc_fusion.RelationFullFusion`;
* adaptive view weights with ``gamma = 6``: the loss is ``sum_v w_v^gamma CE_v`` (cross-entropy is
  its only loss), the weights follow the closed form ``w_v ~ CE_v^(1/(1-gamma))`` (normalised,
  detached, updated after every training step; initially 1/n) and the prediction is
  ``sum_v w_v logits_v`` - :class:`~mv2d_bench.models.mvc_fusion.view_weights.LossViewWeights`;
* weights of every Linear drawn from N(0, 0.02) (its ``init_weights(net, 'normal')``; biases and
  BatchNorm keep torch's defaults, since that initialiser only matches ``BatchNorm2d``).

As a ViewOutputs model: ``obs`` = ``rep`` = f_i, ``obs_logits`` = ``rep_logits`` = the per-view
predictions (classifier of view i with its relations), ``fused_logits`` = the weighted sum, and
``loo_logits`` the same fusion with one view left out (its relation slots zero, its weight 0),
so objectives such as MV2D's consistency term can be applied to it as well.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from mv2d_bench.models.mvc_fusion import RelationFullFusion, fuse_views
from mv2d_bench.models.mvc_fusion.view_weights import LossViewWeights
from mv2d_bench.models.mvc_network import MvcNetwork
from mv2d_bench.models.mvc_outputs import MvcOutputs
from mv2d_bench.models.perview import ViewEncoders
from mv2d_bench.views import StackedList


class MvNNcor(MvcNetwork):
    name = "mvnncor"

    def __init__(
        self,
        view_dims: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (400, 200),
        dropout: float = 0.5,
        classifier_hidden: int = 300,
        fusion_dropout: float = 0.5,
        gamma: float = 6.0,
        init_std: float = 0.02,
        distill_through_heads: bool = False,
    ) -> None:
        super().__init__(view_dims, num_classes, hidden, distill_through_heads)
        n, view_dims = self.n_views, self.view_dims
        self.encoders = ViewEncoders(view_dims, hidden, dropout, init_std=init_std)
        self.view_weights = LossViewWeights(n, gamma)
        self.fusion = RelationFullFusion(
            n,
            int(hidden[-1]),
            num_classes,
            hidden=classifier_hidden,
            dropout=fusion_dropout,
            weighting=self.view_weights,
            init_std=init_std,
        )

    def forward(
        self,
        views: Sequence[Tensor],
        needs: frozenset[str] | set[str] = frozenset(),
        present: Tensor | None = None,
    ) -> MvcOutputs:
        split = self.split_streams(views)
        f = self.encoders(views)  # (B, n, fea_out)
        fused = fuse_views(
            self.fusion,
            f,
            present,
            loo="loo_logits" in needs,
            split=split,
            need_fused=bool({"fused_logits", "obs_logits", "rep_logits"} & set(needs)),
        )
        per_view = fused.view_logits  # (B, n, C), live
        out = MvcOutputs(obs=list(f.unbind(1)), obs_stack=f.transpose(0, 1))
        out.rep, out.rep_stack = out.obs, out.obs_stack
        out.task_obs_logits = per_view.transpose(0, 1)
        out.task_fused_logits, out.task_view_logits = fused.fused, per_view
        out.obs_logits = StackedList(fused.view_logits_for_objective.transpose(0, 1))
        out.rep_logits = out.obs_logits
        out.fused_logits, out.loo_logits = fused.fused_for_objective, fused.loo
        return out

    def loss(self, outputs: MvcOutputs, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """MvNNcor's loss ``sum_v w_v^gamma CE_v``; moves the view weights (training mode)."""
        return self.view_weights.loss(outputs.task_view_logits, target, label_smoothing)
