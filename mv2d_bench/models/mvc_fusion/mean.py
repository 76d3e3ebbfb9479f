"""``mean`` fusion: the masked mean of the subset's view representations, then an MLP.

One reading of the MV2D paper's "we omit f_psi for simplicity": no relation module; p(y | z_S)
is a classifier of the average of the z_i in S (:class:`~.mlp.SubsetMLP`). An empty subset
averages to the zero vector.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mv2d_bench.models.mvc_fusion.base import FusionOutput, SubsetFusion
from mv2d_bench.models.mvc_fusion.mlp import SubsetMLP


class MeanFusion(SubsetFusion):
    name = "mean"

    def __init__(
        self, n_views: int, dim: int, num_classes: int, hidden: int = 128, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.classifier = SubsetMLP(n_views, dim, num_classes, hidden, dropout)

    def forward(self, reps: Tensor, weights: Tensor, live: int) -> FusionOutput:
        w = weights.to(reps.dtype)
        w = w / w.sum(-1, keepdim=True).clamp(min=torch.finfo(w.dtype).tiny)
        return FusionOutput(self.classifier(reps, w, live))
