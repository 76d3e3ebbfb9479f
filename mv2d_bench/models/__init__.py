"""Models: backbones, bottlenecks, heads and fusion (per task). Pure and device-agnostic."""

from mv2d_bench.models.fusion import LeaveOneOutFusion, MeanFusion, subset_masks

__all__ = ["LeaveOneOutFusion", "MeanFusion", "subset_masks"]
