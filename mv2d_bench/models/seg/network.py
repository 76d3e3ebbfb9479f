"""The LiDAR-RGB segmentation network with a Gaussian bottleneck per branch (MV2D's third task).

Per point, two views (:class:`~mv2d_bench.views.ViewOutputs`, items = points):

* view 0, LiDAR: the 3D branch's point feature v_0 (``backbone_3d`` = ``spconv``, the sparse
  voxel U-Net, or ``range``, the pure-torch range-image U-Net), P_v0 from a linear head;
* view 1, camera: the 2D branch's decoder feature gathered at the point's pixel in the camera
  the point is assigned to (v_1), and the per-pixel classifier's logits gathered there (P_v1);
  points no camera sees have ``present[:, 1] = False`` (their camera fields are zeros).

LI-fusion (``li_fusion``, at the encoder stages ``fusion_stages``) adds image features of the
ResNet stages 1..4 into the 3D encoder stages 1..4 (camera-seen points only). The bottleneck
(``bottleneck`` = ``both``, ``lidar``, ``camera`` or ``none``) maps v_i to z_i (a reparameterised
sample while training when ``stochastic``, else its mean), with a linear head P_zi; a view
without bottleneck has z_i = v_i and P_zi = P_vi. The fused prediction P_Z projects each z_i to
``fusion_width`` and averages the present views (:class:`~mv2d_bench.models.fusion.MeanFusion`
in :class:`~mv2d_bench.models.fusion.LeaveOneOutFusion`, which also gives P_Z\\i in the same
pass when the objective needs it). ``image_branch = false`` is the LiDAR-only network (one
view). The prediction the protocols score is P_Z (``predict = "fused"``) or P_z0 (``"lidar"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mv2d_bench.models.bottleneck import GaussianBottleneck
from mv2d_bench.models.fusion import LeaveOneOutFusion, MeanFusion
from mv2d_bench.models.seg.image_branch import ImageBranch, gather
from mv2d_bench.models.seg.li_fusion import LIFusion
from mv2d_bench.views import ViewOutputs

BACKBONES = ("spconv", "range")
BOTTLENECKS = ("both", "lidar", "camera", "none")
PREDICTIONS = ("fused", "lidar")


@dataclass
class SegInputs:
    """One batch of scans, flattened over points (the task builds it)."""

    points: Tensor
    """(P, 4) float: x, y, z, intensity."""
    batch: Tensor
    """(P,) int64: the scan of each point, 0..n_scans-1."""
    n_scans: int
    ring: Tensor | None = None
    """(P,) int64 laser ring (nuScenes) or None."""
    images: Tensor | None = None
    """(n_scans * cameras, 3, H, W) float, normalised."""
    point_image: Tensor | None = None
    """(P,) int64: row of ``images`` the point is assigned to, -1 for none."""
    point_grid: Tensor | None = None
    """(P, 2) float: normalised (x, y) in that image (align_corners=True)."""


class SegNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        backbone_3d: str = "spconv",
        image_branch: bool = True,
        li_fusion: bool = True,
        fusion_stages: Sequence[int] = (1, 2, 3, 4),
        bottleneck: str = "both",
        stochastic: bool = True,
        z_dim: int = 64,
        bottleneck_hidden: int = 0,
        fusion_width: int = 64,
        predict: str = "fused",
        voxel_size: float = 0.05,
        encoder: Sequence[int] = (32, 64, 128, 256),
        decoder: Sequence[int] = (256, 128, 96, 96),
        stem: int = 32,
        range_height: int = 64,
        range_width: int = 2048,
        fov_up: float = 3.0,
        fov_down: float = -25.0,
        image_width: int = 128,
        image_weights: str | None = None,
        min_std: float = 1e-4,
    ) -> None:
        super().__init__()
        for name, value, allowed in (
            ("backbone_3d", backbone_3d, BACKBONES),
            ("bottleneck", bottleneck, BOTTLENECKS),
            ("predict", predict, PREDICTIONS),
        ):
            if value not in allowed:
                raise ValueError(f"config: 'model.{name}' must be one of {allowed}; got {value!r}")
        stages = sorted({int(s) for s in fusion_stages})
        if not set(stages) <= {1, 2, 3, 4}:
            raise ValueError(f"config: 'model.fusion_stages' must be within 1..4; got {stages}")
        self.num_classes = int(num_classes)
        self.image_branch = bool(image_branch)
        self.fusion_stages = tuple(stages) if (li_fusion and image_branch) else ()
        self.stochastic = bool(stochastic)
        self.predict = predict
        if backbone_3d == "spconv":
            from mv2d_bench.models.seg.sparse_unet import SparseUNet

            self.backbone = SparseUNet(voxel_size, encoder, decoder, stem)
        else:
            from mv2d_bench.models.seg.range_unet import RangeUNet

            self.backbone = RangeUNet(
                range_height, range_width, fov_up, fov_down, encoder, decoder, stem
            )
        obs_dims = [self.backbone.out_channels]
        if self.image_branch:
            self.image = ImageBranch(num_classes, width=image_width, weights=image_weights)
            obs_dims.append(self.image.width)
            self.li_fusion = nn.ModuleDict(
                {
                    str(s): LIFusion(
                        self.backbone.encoder_channels[s - 1], ImageBranch.stage_channels[s - 1]
                    )
                    for s in self.fusion_stages
                }
            )
        self.n_views = len(obs_dims)
        self.obs_dims = obs_dims
        self.lidar_head = nn.Linear(obs_dims[0], num_classes)
        with_bottleneck = {
            "both": [True, True],
            "lidar": [True, False],
            "camera": [False, True],
            "none": [False, False],
        }[bottleneck][: self.n_views]
        self.bottlenecks = nn.ModuleList(
            GaussianBottleneck(d, z_dim, bottleneck_hidden, min_std) if b else nn.Identity()
            for d, b in zip(obs_dims, with_bottleneck, strict=True)
        )
        self.with_bottleneck = with_bottleneck
        self.rep_dims = [z_dim if b else d for d, b in zip(obs_dims, with_bottleneck, strict=True)]
        self.rep_heads = nn.ModuleList(
            nn.Linear(d, num_classes) if b else nn.Identity()
            for d, b in zip(self.rep_dims, with_bottleneck, strict=True)
        )
        self.fusion_proj = nn.ModuleList(nn.Linear(d, fusion_width) for d in self.rep_dims)
        self.fusion = LeaveOneOutFusion(MeanFusion(fusion_width, num_classes))

    # -- pieces -------------------------------------------------------------------------------
    def _fuse_fn(self, inputs: SegInputs, stages: list[Tensor] | None):
        if not self.fusion_stages or stages is None:
            return None
        seen = inputs.point_image >= 0
        image, grid = inputs.point_image[seen], inputs.point_grid[seen]

        def fuse(stage: int, point_features: Tensor):
            if stage not in self.fusion_stages or int(seen.sum()) < 2:
                return None
            img = gather(stages[stage - 1], image, grid)
            return seen, self.li_fusion[str(stage)](point_features[seen], img)

        return fuse

    def _bottleneck(self, i: int, v: Tensor):
        if not self.with_bottleneck[i]:
            return v, None, None
        mean_z = self.bottlenecks[i]
        z, mean, std = mean_z(v)
        if not self.stochastic:
            z = mean
        return z, mean, std

    # -- forward ------------------------------------------------------------------------------
    def forward(self, inputs: SegInputs, needs: frozenset[str] = frozenset()) -> ViewOutputs:
        n_points = inputs.points.shape[0]
        stages = feats = logits = None
        if self.image_branch:
            if inputs.images is None or inputs.point_image is None:
                raise ValueError("SegNet: the 2D branch needs images and point_image/point_grid")
            stages, feats, logits = self.image(inputs.images)
        v0 = self.backbone(
            inputs.points,
            inputs.batch,
            inputs.ring,
            inputs.n_scans,
            fuse=self._fuse_fn(inputs, stages),
        )
        obs, obs_logits = [v0], [self.lidar_head(v0)]
        present = None
        if self.image_branch:
            seen = inputs.point_image >= 0
            image, grid = inputs.point_image[seen], inputs.point_grid[seen]
            v1 = v0.new_zeros(n_points, feats.shape[1])
            l1 = v0.new_zeros(n_points, logits.shape[1])
            v1 = v1.index_put((seen.nonzero(as_tuple=True)[0],), gather(feats, image, grid))
            l1 = l1.index_put((seen.nonzero(as_tuple=True)[0],), gather(logits, image, grid))
            obs.append(v1)
            obs_logits.append(l1)
            present = torch.stack([torch.ones_like(seen), seen], dim=1)
        reps, means, stds, rep_logits = [], [], [], []
        for i, v in enumerate(obs):
            z, mean, std = self._bottleneck(i, v)
            reps.append(z)
            means.append(mean)
            stds.append(std)
            rep_logits.append(self.rep_heads[i](z) if self.with_bottleneck[i] else obs_logits[i])
        projected = [proj(z) for proj, z in zip(self.fusion_proj, reps, strict=True)]
        fused, loo = self.fusion(projected, present, loo="loo_logits" in needs)
        all_gaussian = all(m is not None for m in means)
        return ViewOutputs(
            obs=obs,
            obs_logits=obs_logits,
            rep=reps,
            rep_mean=means if all_gaussian else None,
            rep_std=stds if all_gaussian else None,
            rep_logits=rep_logits,
            fused_logits=fused,
            loo_logits=loo,
            present=present,
        )

    def prediction_logits(self, outputs: ViewOutputs) -> Tensor:
        """The logits the protocols score: P_Z (``fused``) or the LiDAR view's P_z0."""
        return outputs.fused_logits if self.predict == "fused" else outputs.rep_logits[0]
