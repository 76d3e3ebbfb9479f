"""``concat`` fusion: the subset's view representations side by side, then an MLP.

The other reading of the MV2D paper's "we omit f_psi for simplicity": p(y | z_S) classifies the
concatenation [z_1, ..., z_n] in which the views outside S are zero vectors
(:class:`~.mlp.SubsetMLP` with one block of the first Linear per view).
"""

from __future__ import annotations

from torch import Tensor

from mv2d_bench.models.mvc_fusion.base import FusionOutput, SubsetFusion
from mv2d_bench.models.mvc_fusion.mlp import SubsetMLP


class ConcatFusion(SubsetFusion):
    name = "concat"

    def __init__(
        self, n_views: int, dim: int, num_classes: int, hidden: int = 128, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.classifier = SubsetMLP(n_views, dim, num_classes, hidden, dropout, True)

    def forward(self, reps: Tensor, weights: Tensor, live: int) -> FusionOutput:
        return FusionOutput(self.classifier(reps, weights.to(reps.dtype), live))
