"""The LiDAR-RGB segmentation task (nuScenes-lidarseg, SemanticKITTI): the 2D/3D network with
LI-fusion and a bottleneck per branch, per point.

Data (:mod:`mv2d_bench.harness.seg_batches`): ``train.batch_size`` scans per global batch (on
torchrun, rank r takes scans r, r + world, ...), each with its camera images resized to
``model.image_size``; every random draw (scan order, augmentation seeds) comes from the
trainer's generator. The runs train on the benchmark's ``train`` split and are scored on its
``val`` split, the split the ``*/val@1`` protocols score (both the trainer's "val" and "test"
evaluate it; there is no model selection on it: ``has_validation`` is False and the last epoch is
reported, as the segmentation literature reports val).

Views per point (:class:`~mv2d_bench.models.seg.network.SegNet`): view 0 = LiDAR, view 1 = the
cameras merged (``seg.camera_merge``: the last camera that sees the point, as the authors' code,
or the first), with ``ViewOutputs.present`` saying which points a camera sees. The objective
combines presence with the label mask per view, so VCD / MV2D use only points that a camera sees
and that have a label, while the LiDAR losses use every labelled point.

Task loss (``[loss]``, :class:`SegLossConfig`), on every head (P_v and P_z of each view, P_Z;
P_z counted once when a view has no bottleneck), each over its points (LiDAR and fused: the
labelled points; camera: the labelled points a camera sees), averaged over heads::

    ce * cross-entropy + focal * focal(gamma) + lovasz * Lovasz-softmax

The weights (1, 1, 1) are this suite's choice: the paper does not state them and the authors'
released code trains with the cross-entropy only.

``seg.fov_only = true`` removes every point no camera sees before training and evaluation, as
the authors' code does; it requires a ``*-fov@1`` protocol (the full-scan protocols score every
point).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from mv2d_bench.harness.seg_batches import SegBatch, SegScans, collate
from mv2d_bench.harness.task import Task
from mv2d_bench.leaderboards import protocols
from mv2d_bench.models.seg.losses import cross_entropy, focal_loss, lovasz_softmax
from mv2d_bench.views import ViewOutputs

MODEL_NAME = "lidar-rgb-seg"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULTS = {
    # benchmark: (image_size (H, W), range image (H, W))
    "nuscenes-lidarseg": ((360, 640), (32, 1024)),
    "semantickitti": ((376, 1241), (64, 2048)),
}


@dataclass
class SegModelConfig:
    name: str = MODEL_NAME
    backbone_3d: str = "spconv"
    """3D branch: 'spconv' (sparse voxel U-Net, SPVCNN-like) or 'range' (pure torch)."""
    image_branch: bool = True
    """False: the LiDAR-only network (one view)."""
    li_fusion: bool = True
    fusion_stages: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    bottleneck: str = "both"
    """Gaussian bottleneck on 'both' branches, 'lidar' or 'camera' only, or 'none'."""
    stochastic: bool = True
    """False: z is the bottleneck's mean while training too (a deterministic bottleneck)."""
    z_dim: int = 64
    bottleneck_hidden: int = 0
    fusion_width: int = 64
    predict: str = "fused"
    """What the protocols score: 'fused' (P_Z) or 'lidar' (P_z of the LiDAR view)."""
    voxel_size: float = 0.05
    encoder: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    decoder: list[int] = field(default_factory=lambda: [256, 128, 96, 96])
    stem: int = 32
    range_height: int = 0
    """Range-image rows (0: 32 rings for nuScenes, 64 for SemanticKITTI)."""
    range_width: int = 0
    """Range-image columns (0: 1024 for nuScenes, 2048 for SemanticKITTI)."""
    fov_up: float = 3.0
    fov_down: float = -25.0
    image_size: list[int] = field(default_factory=list)
    """(H, W) the images are resized to ([]: 360 x 640 for nuScenes, 376 x 1241 for KITTI)."""
    image_width: int = 128
    """Channels of the SwiftNet decoder."""
    image_weights: str = ""
    """A local torchvision ResNet-18 state dict ('' : random initialisation). Never downloaded."""


@dataclass
class SegLossConfig:
    ce: float = 1.0
    focal: float = 1.0
    focal_gamma: float = 2.0
    lovasz: float = 1.0


@dataclass
class SegConfig:
    protocol: str = ""
    """Protocol id ('' : the benchmark's first, e.g. semantickitti/val@1)."""
    camera_merge: str = "last"
    """Which camera a point seen by several is assigned to: 'last' (the authors') or 'first'."""
    fov_only: bool = False
    """Drop the points no camera sees, in training and evaluation (the authors' setting)."""
    augment: bool = True
    eval_batch_size: int = 1
    """Scans per evaluation batch (batch b goes to rank b % world_size)."""
    workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""


class SegTask(Task):
    family: ClassVar[str] = "seg"
    sections: ClassVar[dict[str, type]] = {
        "model": SegModelConfig,
        "loss": SegLossConfig,
        "seg": SegConfig,
    }
    has_validation: ClassVar[bool] = False

    @property
    def mc(self) -> SegModelConfig:
        return self.config.section("model")

    @property
    def sc(self) -> SegConfig:
        return self.config.section("seg")

    # -- data -------------------------------------------------------------------------------
    def _resolve(self) -> None:
        bench, sc, mc = self.benchmark, self.sc, self.mc
        pid = sc.protocol or bench.protocols[0]
        if pid not in bench.protocols:
            raise ValueError(
                f"config: 'seg.protocol' {pid!r} is not a protocol of {bench.name}; expected one "
                f"of {', '.join(bench.protocols)}"
            )
        self.protocol = protocols.get(pid)
        if sc.fov_only and not self.protocol.fov:
            raise ValueError(
                f"config: 'seg.fov_only' drops the points no camera sees, but {pid} scores every "
                f"point; use {pid.replace('/val@', '/val-fov@')}"
            )
        if sc.camera_merge not in ("last", "first"):
            raise ValueError(
                f"config: 'seg.camera_merge' must be last or first; got {sc.camera_merge!r}"
            )
        if sc.eval_batch_size < 1 or sc.workers < 0:
            raise ValueError("config: 'seg.eval_batch_size' must be >= 1 and 'seg.workers' >= 0")
        image_size, range_size = DEFAULTS.get(bench.name, ((360, 640), (64, 2048)))
        if mc.image_size and len(mc.image_size) != 2:
            raise ValueError(f"config: 'model.image_size' must be [H, W]; got {mc.image_size}")
        self.image_size = tuple(mc.image_size) if mc.image_size else image_size
        self.range_size = (mc.range_height or range_size[0], mc.range_width or range_size[1])

    def setup(self) -> None:
        self._resolve()
        bench, sc = self.benchmark, self.sc
        self.num_classes = int(bench.num_classes)
        self.n_views = 2 if self.mc.image_branch else 1
        images = self.image_size if self.mc.image_branch else None
        need_cameras = self.mc.image_branch or self.protocol.fov or sc.fov_only
        common = dict(image_size=images, need_cameras=need_cameras,
                      camera_merge=sc.camera_merge, fov_only=sc.fov_only)  # fmt: skip
        self.train_refs = bench.scans("train")
        self.eval_refs = bench.scans(bench.eval_split)
        self.train_set = SegScans(bench, self.train_refs, augment=sc.augment, **common)
        self.eval_set = SegScans(bench, self.eval_refs, augment=False, **common)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def _n_batches(self) -> int:
        n, bs = len(self.train_refs), self.config.train.batch_size
        if self.config.train.drop_last and n >= bs:
            return n // bs
        return -(-n // bs)

    def num_train_batches(self, epoch: int) -> int:
        return self._n_batches()

    def _loader(self, dataset: SegScans, batches: list[list[tuple[int, int]]]):
        if self.sc.workers == 0:
            for items in batches:
                yield collate([dataset[i] for i in items])
            return
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, collate_fn=collate, num_workers=self.sc.workers
        )
        yield from loader

    def train_batches(self, epoch: int, generator: torch.Generator):
        n, bs = len(self.train_refs), self.config.train.batch_size
        perm = torch.randperm(n, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()
        w = self.world
        if bs < w.size:
            raise ValueError(
                f"config: 'train.batch_size' ({bs} scans, the global batch) must be at least the "
                f"number of processes ({w.size}): every rank needs a scan per step"
            )
        batches = []
        for b in range(self._n_batches()):
            members = perm[b * bs : (b + 1) * bs]
            mine = [(i, seeds[i]) for k, i in enumerate(members) if k % w.size == w.rank]
            batches.append(mine)
        yield from self._loader(self.train_set, batches)

    def eval_batches(self, split: str):
        """This rank's batches of the benchmark's validation split (for "val" and "test")."""
        if split not in ("val", "test"):
            raise ValueError(f"the segmentation task has no {split!r} split (only 'val', 'test')")
        n, size = len(self.eval_refs), self.sc.eval_batch_size
        batches = [
            [(i, 0) for i in range(b * size, min((b + 1) * size, n))]
            for b in self.eval_shard(-(-n // size))
        ]
        yield from self._loader(self.eval_set, batches)

    # -- model ------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from mv2d_bench.models.seg.network import SegNet

        mc = self.mc
        if mc.name != MODEL_NAME:
            raise ValueError(f"config: 'model.name' must be {MODEL_NAME!r}; got {mc.name!r}")
        return SegNet(
            self.num_classes,
            backbone_3d=mc.backbone_3d,
            image_branch=mc.image_branch,
            li_fusion=mc.li_fusion,
            fusion_stages=mc.fusion_stages,
            bottleneck=mc.bottleneck,
            stochastic=mc.stochastic,
            z_dim=mc.z_dim,
            bottleneck_hidden=mc.bottleneck_hidden,
            fusion_width=mc.fusion_width,
            predict=mc.predict,
            voxel_size=mc.voxel_size,
            encoder=mc.encoder,
            decoder=mc.decoder,
            stem=mc.stem,
            range_height=self.range_size[0],
            range_width=self.range_size[1],
            fov_up=mc.fov_up,
            fov_down=mc.fov_down,
            image_width=mc.image_width,
            image_weights=mc.image_weights or None,
        )

    def inputs(self, batch: SegBatch):
        from mv2d_bench.models.seg.network import SegInputs

        d = self.device
        images = None
        if batch.images is not None:
            images = (batch.images.to(d).float() / 255.0 - self.mean) / self.std
        return SegInputs(
            points=batch.points.to(d),
            batch=batch.batch.to(d),
            n_scans=batch.n_scans,
            ring=None if batch.ring is None else batch.ring.to(d),
            images=images,
            point_image=batch.point_image.to(d),
            point_grid=batch.point_grid.to(d),
        )

    def forward(self, model: nn.Module, batch: SegBatch, needs: frozenset[str]) -> ViewOutputs:
        out = model(self.inputs(batch), needs)
        labels = batch.labels.to(self.device)
        out.target = (labels - 1).clamp(min=0)
        out.mask = labels > 0
        return out

    def losses(self, model: nn.Module, outputs: ViewOutputs, batch: SegBatch) -> dict[str, Tensor]:
        lc: SegLossConfig = self.config.section("loss")
        y = outputs.target
        heads = []
        for i in range(outputs.n_views):
            mask = outputs.view_mask(i)
            heads.append((outputs.obs_logits[i], mask))
            if outputs.rep_logits[i] is not outputs.obs_logits[i]:
                heads.append((outputs.rep_logits[i], mask))
        heads.append((outputs.fused_logits, outputs.valid()))
        terms: dict[str, Tensor] = {}
        if lc.ce:
            terms["ce"] = lc.ce * torch.stack([cross_entropy(x, y, m) for x, m in heads]).mean()
        if lc.focal:
            values = [focal_loss(x, y, m, lc.focal_gamma) for x, m in heads]
            terms["focal"] = lc.focal * torch.stack(values).mean()
        if lc.lovasz:
            terms["lovasz"] = (
                lc.lovasz * torch.stack([lovasz_softmax(x, y, m) for x, m in heads]).mean()
            )
        return terms

    # -- evaluation -------------------------------------------------------------------------
    def predict_step(self, model: nn.Module, batch: SegBatch) -> dict[str, Tensor]:
        out = model(self.inputs(batch), frozenset())
        net = getattr(model, "module", model)  # DistributedDataParallel wraps the SegNet
        pred = net.prediction_logits(out).argmax(dim=1) + 1  # classes 1..K, never ignore
        arrays = {"pred": pred, "label": batch.labels.to(self.device)}
        if self.protocol.fov:
            arrays["visible"] = batch.seen.to(self.device)
        return arrays

    def write_predictions(self, model: nn.Module, folder: str | Path) -> int:
        """Write the model's predictions for every scan of the evaluation split in the
        benchmark's submission format (what ``mv2d-bench score PROTOCOL --predictions folder``
        scores); returns the number of scans. One process only."""
        if self.sc.fov_only:
            raise ValueError(
                "seg.fov_only drops the points no camera sees; a submission needs every point"
            )
        if self.world.size > 1:
            raise ValueError("predictions are written by one process (not under torchrun)")
        training = model.training
        model.eval()
        n = 0
        try:
            with torch.no_grad():
                for batch in self.eval_batches("test"):
                    pred = self.predict_step(model, batch)["pred"].cpu().numpy()
                    parts = np.split(pred, np.cumsum(batch.counts)[:-1])
                    for scan_id, part in zip(batch.ids, parts, strict=True):
                        self.benchmark.write_predictions(folder, scan_id, part)
                        n += 1
        finally:
            model.train(training)
        return n

    def record_fields(self) -> dict[str, Any]:
        bench = self.benchmark
        params = dataclasses.asdict(self.mc)
        name = params.pop("name")
        params.update(
            num_classes=self.num_classes,
            n_views=self.n_views,
            cameras=list(bench.cameras),
            image_size=list(self.image_size),
            range_size=list(self.range_size),
            camera_merge=self.sc.camera_merge,
            fov_only=self.sc.fov_only,
        )
        if self.mc.backbone_3d == "spconv":
            import spconv

            params["spconv_version"] = spconv.__version__
        if params.get("image_weights"):
            from mv2d_bench.loaders.base import sha256_file

            params["image_weights_sha256"] = sha256_file(params["image_weights"])
        eval_split = bench.eval_split
        return {
            "benchmark": {
                "name": bench.name,
                "version": int(getattr(bench, "version", 1)),
                "data_sha256": bench.data_sha256(["train", eval_split]),
                "split_id": f"{bench.split_id('train')}->{bench.split_id(eval_split)}",
                "split_sha256": bench.split_sha256(["train", eval_split]),
                "trial": None,
            },
            "protocol": self.protocol.id,
            "model": {"name": name, "params": params},
        }
