"""The visible-infrared ReID task (SYSU-MM01, RegDB): the three-branch network on paired batches.

Data path: ``benchmark.load(trial, protocol)`` gives the training images (both modalities, uint8
from the HDF5 cache) and the test query / gallery. Training batches come from the
:class:`~mv2d_bench.harness.samplers.IdentityPairedSampler` (``[reid] p`` identities x ``k``
visible + ``k`` infrared images, item j of both modalities the same person), read with one HDF5
read per modality, augmented (zero-pad ``pad`` pixels and random crop back, random horizontal
flip: the AGW/DDAG recipe; every random draw from the trainer's generator), and normalised with
the ImageNet mean and std. The intermediate modality (``[reid] third_view``) is the grayscale
copy of the augmented visible images (``"gray-visible"``, the default), of both modalities
(``"gray-both"``: two intermediate views) or nothing (``"none"``); the copies are made only when
a view group needs them, from the pixels (:func:`mv2d_bench.loaders.reid_common.grayscale`,
``reid.gray_from = "pixels"``) or from the normalised tensor as the authors' code does
(``"normalised"``), and go through the shared branch.

Which views the objective sees (``[model] objective_on``, see
:data:`mv2d_bench.models.reid.GROUPS`): ``auto`` picks ``mv2d`` (visible, infrared, intermediate)
for ``mv2d``, ``shared`` for ``vcd`` and ``vmd``, ``specific`` for ``vsd`` and ``branches`` (all
four bottlenecks) for anything else. ``[model] extra_objectives`` adds objectives on other groups
as ``"name@group"`` (the paper's full CVPR recipe: objective ``vcd`` with extras
``["vsd@specific", "vmd@shared"]``); each takes the ``[objective]`` keys it accepts (``weight``,
``temperature`` ...). They live in the model (``model.extra_objectives``), so their parameters
are trained and checkpointed with it; their terms are logged as ``<name>@<group>/<term>``.

Task loss (``[loss]``, :class:`ReidLossConfig`)::

    ce      * mean of CE(P_v, y) and CE(P_z, y) over the branch outputs (label smoothing;
              without a bottleneck P_z is P_v and counts once)
    triplet * mean over {specific, shared} x {f, z} of rank(features, y)

where the specific set is E_V(visible) with E_I(infrared) and the shared set E_S on both
modalities (and the intermediate images when present): the rank loss pulls the two
modalities of one identity together. f is the pre-BN feature (BN-neck convention; with
``loss.rank_on = "obs"`` the BN-neck output v). ``loss.rank``: ``"batch-hard"`` triplet or the
authors' ``"ranked-list"`` loss on L2-normalised features (same / other modality margins and
thresholds; :func:`mv2d_bench.models.reid_losses.ranked_list_loss`).

Evaluation (test only; ReID has no validation split): features of the query and of the gallery
(:meth:`mv2d_bench.models.reid.ReidNet.embed`, computed and kept on ``run.device``), scored by
the benchmark's protocol (``[reid] protocol``, default the benchmark's first: for SYSU-MM01 the
official galleries, ``sysu-mm01/all-search/single-shot@2``, whose ``rand_perm_cam.mat`` is
looked for when the run starts: ``reid.rand_perm_cam``, the data root, ``$MV2D_SYSU_RAND_PERM``),
which reports the mean over its trials; the per-trial values and the gallery source
(``protocol_gallery``: source and the permutation file's sha256) go to the run record.

Backbone weights (``model.weights``): a local torchvision state dict, ``"none"`` (random
initialisation, on purpose) or ``""``. A run from a paper or authors' preset (``reid.preset``)
with ``""`` is an error: those presets train from ImageNet weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mv2d_bench import objectives
from mv2d_bench.harness.samplers import EPOCH_DEFINITIONS, IdentityPairedSampler
from mv2d_bench.harness.task import Task
from mv2d_bench.loaders.reid_common import INFRARED, MODALITY_NAMES, VISIBLE, grayscale
from mv2d_bench.models.reid import (
    GROUPS,
    THIRD_VIEW_KEYS,
    THIRD_VIEWS,
    BranchOutput,
    ReidNet,
    group_keys,
    view_outputs,
)
from mv2d_bench.models.reid_losses import batch_hard_triplet, ranked_list_loss
from mv2d_bench.objectives.contract import bind_objective, call_objective, needs_of, parameters_of
from mv2d_bench.views import ViewOutputs

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODEL_NAME = "reid-three-branch"
AUTO_GROUPS = {"mv2d": "mv2d", "vcd": "shared", "vmd": "shared", "vsd": "specific"}


@dataclass
class ReidModelConfig:
    backbone: str = "resnet50"
    """torchvision ResNet of each branch (resnet18 ... resnet152)."""
    weights: str = ""
    """Local torchvision state dict for the backbones; "none": random initialisation on purpose;
    '': not given (random initialisation; an error with a paper or authors' preset). Never
    downloaded."""
    last_stride: int = 1
    z_dim: int = 256
    hidden: list[int] = field(default_factory=lambda: [1024, 512])
    """Hidden widths of the bottleneck MLP v -> 2 x z_dim."""
    eval_feature: str = "concat"
    """Retrieval feature: concat (specific + shared z means), shared, specific or obs."""
    bottleneck: bool = True
    """False: the 'no bottleneck' ablation (z = v, P_z = P_v in every branch)."""
    bottleneck_type: str = "gaussian"
    """'gaussian' (the paper: mean and softplus std, sampled while training) or
    'deterministic' (the authors' code: Linear-BN-ReLU hidden layers, z = the output)."""
    rep_head: str = "linear"
    """The classifier on z: 'linear' or 'mlp' (the authors' Linear-BN-LeakyReLU-Dropout-Linear)."""
    objective_on: str = "auto"
    """View group the objective sees: auto, specific, shared, branches or mv2d."""
    extra_objectives: list[str] = field(default_factory=list)
    """More objectives as "name@group", e.g. ["vsd@specific", "vmd@shared"]."""


@dataclass
class ReidLossConfig:
    ce: float = 1.0
    label_smoothing: float = 0.1
    triplet: float = 1.0
    """Weight of the rank loss (loss.rank)."""
    triplet_margin: float = 0.3
    """Margin of the batch-hard triplet loss (a negative value: the soft-margin variant)."""
    rank: str = "batch-hard"
    """The rank loss: 'batch-hard' triplet or 'ranked-list' (the authors' cross-modality
    ranked-list loss on L2-normalised features; mv2d_bench.models.reid_losses)."""
    rank_on: str = "feat"
    """Which features the rank loss sees besides z: 'feat' (pre-BN, the BN-neck convention) or
    'obs' (after the BN-neck, as the authors' code)."""
    ranked_list_margins: list[float] = field(default_factory=lambda: [0.9, 1.0])
    """Ranked-list margins (same modality, other modality)."""
    ranked_list_alphas: list[float] = field(default_factory=lambda: [2.2, 2.0])
    """Ranked-list negative thresholds alpha (same modality, other modality)."""
    ranked_list_temperature: float = 1.0


@dataclass
class ReidConfig:
    protocol: str = ""
    """Protocol id ('' : the benchmark's first, e.g. sysu-mm01/all-search/single-shot@2)."""
    trial: int = 0
    """RegDB's split trial 1..10 (each trial is its own run); 0 for SYSU-MM01."""
    p: int = 8
    """Identities per batch."""
    k: int = 4
    """Images per identity and modality in a batch."""
    epoch: str = "identities"
    """Epoch length: 'identities' (n_identities / p batches, the authors' code) or 'images'
    (max modality size / (p * k) batches, AGW/DDAG). See mv2d_bench.harness.samplers."""
    pad: int = 10
    """Zero padding before the random crop (0: no crop)."""
    flip: bool = True
    eval_batch_size: int = 128
    third_view: str = "gray-visible"
    """The intermediate modality: "gray-visible" (grayscale copies of the visible images),
    "gray-both" (of both modalities: two intermediate views) or "none"."""
    gray_from: str = "pixels"
    """Grayscale copies from the uint8 "pixels" (PIL's luma, then normalised) or from the
    "normalised" tensor (0.2989 R + 0.5870 G + 0.1140 B of the normalised channels, as the
    authors' code does)."""
    rand_perm_cam: str = ""
    """SYSU-MM01's official rand_perm_cam.mat ('' : the data root's, then $MV2D_SYSU_RAND_PERM);
    the @2 protocols need it, the run fails at its start without it."""
    preset: str = ""
    """"paper" or "authors" in the presets of configs/paper and configs/authors: such a run
    needs model.weights (a file, or "none" for random initialisation on purpose)."""


PRESETS = ("", "paper", "authors")
GRAY_FROM = ("pixels", "normalised")


@dataclass
class ReidBatch:
    visible: Tensor
    """(P*K, 3, H, W) uint8."""
    infrared: Tensor
    target: Tensor
    """(P*K,) training labels 0..C-1, item j of both modalities."""
    flip: Tensor
    """(2, P*K) bool: flip visible / infrared item."""
    offset: Tensor
    """(2, P*K, 2) int64: crop offsets (dy, dx) into the padded image."""
    rows: Tensor
    """(2, P*K) int64: positions of the visible / infrared images in the training set."""


@dataclass
class ReidEvalBatch:
    """One evaluation batch: images of one modality of the query or the gallery set."""

    side: str
    """"query" or "gallery"."""
    modality: int
    positions: np.ndarray
    """(B,) positions of the images in their set (the dataset index of the metric)."""
    images: Tensor
    """(B, 3, H, W) uint8."""


@dataclass
class ReidOutputs(ViewOutputs):
    """The objective's views, plus every branch output for the task loss and extra objectives."""

    branches: dict[str, BranchOutput] | None = None


def augment(images: Tensor, flip: Tensor, offset: Tensor, pad: int) -> Tensor:
    """Zero-pad by ``pad``, crop back at ``offset`` (dy, dx) and flip where ``flip``; uint8 in,
    uint8 out, any device."""
    if pad > 0:
        h, w = images.shape[-2:]
        padded = F.pad(images, (pad, pad, pad, pad))
        images = torch.stack(
            [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offset.tolist())]
        )
    flip = flip.to(images.device)[:, None, None, None]
    return torch.where(flip, images.flip(-1), images)


class ReidTask(Task):
    family: ClassVar[str] = "reid"
    sections: ClassVar[dict[str, type]] = {
        "model": ReidModelConfig,
        "loss": ReidLossConfig,
        "reid": ReidConfig,
    }
    has_validation: ClassVar[bool] = False

    # -- configuration ----------------------------------------------------------------------
    @property
    def rc(self) -> ReidConfig:
        return self.config.section("reid")

    @property
    def mc(self) -> ReidModelConfig:
        return self.config.section("model")

    def _resolve(self) -> None:
        rc, mc = self.rc, self.mc
        if rc.p < 2 or rc.k < 1:
            raise ValueError(f"config: 'reid.p' must be >= 2 and 'reid.k' >= 1; got {rc.p}, {rc.k}")
        if rc.epoch not in EPOCH_DEFINITIONS:
            raise ValueError(
                f"config: 'reid.epoch' must be one of {', '.join(EPOCH_DEFINITIONS)}; "
                f"got {rc.epoch!r}"
            )
        if rc.pad < 0 or rc.eval_batch_size < 1:
            raise ValueError("config: 'reid.pad' must be >= 0 and 'reid.eval_batch_size' >= 1")
        obj = self.config.run.objective
        self.group = (
            AUTO_GROUPS.get(obj, "branches") if mc.objective_on == "auto" else (mc.objective_on)
        )
        if self.group not in GROUPS:
            raise ValueError(
                f"config: 'model.objective_on' must be auto or one of {', '.join(GROUPS)}; "
                f"got {mc.objective_on!r}"
            )
        self.extras: list[tuple[str, str]] = []
        for item in mc.extra_objectives:
            name, _, group = item.partition("@")
            if not name or group not in GROUPS:
                raise ValueError(
                    f"config: 'model.extra_objectives' item {item!r} must be 'name@group' with "
                    f"group one of {', '.join(GROUPS)}"
                )
            objectives.get(name)  # unknown names fail here, with a did-you-mean
            self.extras.append((name, group))
        lc: ReidLossConfig = self.config.section("loss")
        choices = [
            ("loss.rank", lc.rank, ("batch-hard", "ranked-list")),
            ("loss.rank_on", lc.rank_on, ("feat", "obs")),
            ("model.bottleneck_type", mc.bottleneck_type, ("gaussian", "deterministic")),
            ("model.rep_head", mc.rep_head, ("linear", "mlp")),
        ]
        for key, value, allowed in choices:
            if value not in allowed:
                raise ValueError(
                    f"config: '{key}' must be one of {', '.join(allowed)}; got {value!r}"
                )
        if len(lc.ranked_list_margins) != 2 or len(lc.ranked_list_alphas) != 2:
            raise ValueError(
                "config: 'loss.ranked_list_margins' and 'loss.ranked_list_alphas' must each be "
                "two numbers (same modality, other modality)"
            )
        if mc.bottleneck_type == "deterministic":
            for name in [obj, *(n for n, _ in self.extras)]:
                if "rep_std" in set(getattr(objectives.get(name), "needs", ()) or ()):
                    raise ValueError(
                        f"config: 'model.bottleneck_type' deterministic has no std, but the "
                        f"objective {name!r} needs rep_std; use the gaussian bottleneck"
                    )
        if rc.third_view not in THIRD_VIEWS:
            raise ValueError(
                f"config: 'reid.third_view' must be one of {', '.join(THIRD_VIEWS)}; "
                f"got {rc.third_view!r}"
            )
        if rc.gray_from not in GRAY_FROM:
            raise ValueError(
                f"config: 'reid.gray_from' must be one of {', '.join(GRAY_FROM)}; "
                f"got {rc.gray_from!r}"
            )
        if rc.preset not in PRESETS:
            raise ValueError(
                f"config: 'reid.preset' must be '', 'paper' or 'authors'; got {rc.preset!r}"
            )
        if rc.preset and not mc.weights:
            raise ValueError(
                f"config: 'model.weights': expected a local torchvision {mc.backbone} state dict "
                f'(--set model.weights=/path/{mc.backbone}.pth) or "none" to train from random '
                f'initialisation on purpose; found "" with the {rc.preset} preset, which '
                "trains from ImageNet weights"
            )
        groups = [self.group] + [g for _, g in self.extras]
        used = {k for g in groups for k in group_keys(g, rc.third_view)}
        self.intermediates = [k for k in THIRD_VIEW_KEYS[rc.third_view] if k in used]
        self.n_views = len(group_keys(self.group, rc.third_view))
        bench = self.benchmark
        self.protocol_id = rc.protocol or bench.protocols[0]
        if self.protocol_id not in bench.protocols:
            raise ValueError(
                f"config: 'reid.protocol' {self.protocol_id!r} is not a protocol of "
                f"{bench.name}; expected one of {', '.join(bench.protocols)}"
            )
        self.protocol = make_protocol(self.protocol_id, bench, rc.rand_perm_cam or None)

    # -- data -------------------------------------------------------------------------------
    def setup(self) -> None:
        self._resolve()
        # SYSU-MM01: find the trial galleries' permutations now, not after training
        self.gallery_info = (
            self.protocol.gallery_info() if hasattr(self.protocol, "gallery_info") else None
        )
        trial = self.rc.trial or None
        self.data = self.benchmark.load(trial=trial, protocol=self.protocol_id)
        self.trial = self.data.trial
        train = self.data.train
        self.vis_pos = torch.as_tensor(train.indices(VISIBLE), dtype=torch.int64)
        self.ir_pos = torch.as_tensor(train.indices(INFRARED), dtype=torch.int64)
        labels = torch.as_tensor(np.asarray(train.labels), dtype=torch.int64)
        self.sampler = IdentityPairedSampler(
            labels[self.vis_pos],
            labels[self.ir_pos],
            p=self.rc.p,
            k=self.rc.k,
            epoch=self.rc.epoch,
        )
        self.labels = labels
        self.num_classes = int(self.data.num_classes)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self.split_sha256 = _split_sha256(self.data)

    def num_train_batches(self, epoch: int) -> int:
        return len(self.sampler)

    def train_batches(self, epoch: int, generator: torch.Generator, start: int = 0):
        """The sampler's batches, augmented. Under torchrun every rank draws the same global
        batch (the same random numbers) and keeps a disjoint share of its ``P`` identities
        (:meth:`World.share`), with their ``K`` + ``K`` images. ``start``: the first batches
        are drawn but not read nor yielded (a run resumed in the middle of an epoch)."""
        rc, train, w = self.rc, self.data.train, self.world
        if w.size > 1 and rc.p < w.size:
            raise ValueError(
                f"config: 'reid.p' (identities per global batch) must be >= the world size "
                f"{w.size}, so that every rank has an identity; got {rc.p}"
            )
        lo, hi = w.share(0, rc.p)
        share = slice(lo * rc.k, hi * rc.k)  # items are identity-major: j = p * K + k
        for number, b in enumerate(self.sampler.batches(generator)):
            vis_rows, ir_rows = self.vis_pos[b.visible], self.ir_pos[b.infrared]
            n = len(vis_rows)
            flip = (
                torch.rand(2, n, generator=generator) < 0.5
                if rc.flip
                else (torch.zeros(2, n, dtype=torch.bool))
            )
            offset = torch.randint(0, 2 * rc.pad + 1, (2, n, 2), generator=generator)
            if number < start:
                continue
            if w.size > 1:
                vis_rows, ir_rows = vis_rows[share], ir_rows[share]
                flip, offset = flip[:, share], offset[:, share]
            yield ReidBatch(
                visible=train.images(vis_rows.numpy()),
                infrared=train.images(ir_rows.numpy()),
                target=self.labels[vis_rows],
                flip=flip,
                offset=offset,
                rows=torch.stack([vis_rows, ir_rows]),
            )

    def _normalise(self, images: Tensor) -> Tensor:
        return (images.float() / 255.0 - self.mean) / self.std

    def _gray(self, pixels: Tensor, normalised: Tensor) -> Tensor:
        """The grayscale copy of a batch (``reid.gray_from``), ready for the network."""
        if self.rc.gray_from == "pixels":
            return self._normalise(grayscale(pixels))
        r, g, b = normalised.unbind(dim=1)
        return (0.2989 * r + 0.5870 * g + 0.1140 * b).unsqueeze(1).expand_as(normalised)

    # -- model ------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        mc = self.mc
        model = ReidNet(
            self.num_classes,
            backbone=mc.backbone,
            weights=None if mc.weights in ("", "none") else mc.weights,
            last_stride=mc.last_stride,
            z_dim=mc.z_dim,
            hidden=mc.hidden,
            eval_feature=mc.eval_feature,
            bottleneck=mc.bottleneck,
            bottleneck_type=mc.bottleneck_type,
            rep_head=mc.rep_head,
        )
        extras = nn.ModuleDict()
        for name, group in self.extras:
            accepted = parameters_of(objectives.get(name))
            params = {k: v for k, v in self.config.objective.items() if k in accepted}
            obj = objectives.create(name, **params)
            n = len(group_keys(group, self.rc.third_view))
            bind_objective(obj, obs_dims=[model.feat_dim] * n, rep_dims=[model.z_dim] * n)
            extras[f"{name}@{group}"] = obj
        model.extra_objectives = extras
        return model

    def forward(self, model: nn.Module, batch: ReidBatch, needs: frozenset[str]) -> ReidOutputs:
        pad = self.rc.pad
        vis = augment(batch.visible.to(self.device), batch.flip[0], batch.offset[0], pad)
        ir = augment(batch.infrared.to(self.device), batch.flip[1], batch.offset[1], pad)
        vis_n, ir_n = self._normalise(vis), self._normalise(ir)
        sources = {"shared_intermediate": (vis, vis_n), "shared_intermediate_infrared": (ir, ir_n)}
        mids = {k: self._gray(*sources[k]) for k in self.intermediates}
        branches = model(
            vis_n, ir_n, mids.get("shared_intermediate"), mids.get("shared_intermediate_infrared")
        )
        target = batch.target.to(self.device)
        out = view_outputs(model, branches, self.group, target, needs, self.rc.third_view)
        fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(ViewOutputs)}
        return ReidOutputs(**fields, branches=branches)

    def losses(self, model: nn.Module, outputs: ReidOutputs, batch: ReidBatch) -> dict[str, Tensor]:
        lc: ReidLossConfig = self.config.section("loss")
        y, br = outputs.target, outputs.branches
        terms: dict[str, Tensor] = {}
        if lc.ce:
            heads = [o.obs_logits for o in br.values()]
            heads += [o.rep_logits for o in br.values() if o.rep_logits is not o.obs_logits]
            ce = [F.cross_entropy(x, y, label_smoothing=lc.label_smoothing) for x in heads]
            terms["ce"] = lc.ce * torch.stack(ce).mean()
        if lc.triplet:
            margin = None if lc.triplet_margin < 0 else lc.triplet_margin
            sets = [
                ["visible", "infrared"],
                [k for k in br if k.startswith("shared_")],
            ]
            tri = []
            for keys in sets:
                labels = y.repeat(len(keys))
                # modality of each item: 0 visible (and its grayscale copy), 1 infrared
                modality = torch.cat(
                    [torch.full_like(y, int(k.endswith("infrared"))) for k in keys]
                )
                for attr in (lc.rank_on, "rep"):
                    feats = torch.cat([getattr(br[k], attr) for k in keys])
                    if lc.rank == "ranked-list":
                        tri.append(
                            ranked_list_loss(
                                feats, labels, modality,
                                tuple(lc.ranked_list_margins), tuple(lc.ranked_list_alphas),
                                lc.ranked_list_temperature,
                            )
                        )  # fmt: skip
                    else:
                        tri.append(batch_hard_triplet(feats, labels, margin))
            terms["triplet"] = lc.triplet * torch.stack(tri).mean()
        for key, obj in getattr(model, "extra_objectives", {}).items():
            group = key.rpartition("@")[2]
            needs = needs_of(obj, len(group_keys(group, self.rc.third_view)))
            views = view_outputs(model, br, group, y, needs, self.rc.third_view)
            for name, value in call_objective(obj, views).items():
                terms[f"{key}/{name}"] = value
        return terms

    # -- evaluation -------------------------------------------------------------------------
    def _eval_plan(self) -> list[tuple[str, int, np.ndarray]]:
        """Every evaluation batch of the test split, in order: ``(side, modality, positions)``,
        the query set then the gallery, each modality's images in set order, ``eval_batch_size``
        at a time."""
        plan = []
        bs = self.config.train.eval_batch_size or self.rc.eval_batch_size
        for side, images in (("query", self.data.query), ("gallery", self.data.gallery)):
            modality = np.asarray(images.modality)
            for m in np.unique(modality):
                pos = np.flatnonzero(modality == m)
                plan += [(side, int(m), pos[s : s + bs]) for s in range(0, len(pos), bs)]
        return plan

    def eval_batches(self, split: str):
        if split != "test":
            raise ValueError(f"the ReID task has no {split!r} split (only 'test')")
        plan = self._eval_plan()
        for b in self.eval_shard(len(plan)):
            side, modality, pos = plan[b]
            images = self.data.query if side == "query" else self.data.gallery
            yield ReidEvalBatch(side, modality, pos, images.images(pos))

    def predict_step(self, model: nn.Module, batch: ReidEvalBatch) -> dict[str, Tensor]:
        side, pos = batch.side, batch.positions
        images = self.data.query if side == "query" else self.data.gallery
        x = self._normalise(batch.images.to(self.device))
        dev = self.device
        out = {
            f"{side}_feat": model.embed(x, MODALITY_NAMES[batch.modality]).float(),
            f"{side}_ids": torch.as_tensor(np.asarray(images.ids)[pos], device=dev),
            f"{side}_cams": torch.as_tensor(np.asarray(images.cams)[pos], device=dev),
            f"{side}_dataset_index": torch.as_tensor(pos, dtype=torch.int64, device=dev),
        }
        optional = getattr(self.protocol, "optional_npz_keys", {})
        if side == "gallery" and images.index_in_folder is not None and "gallery_index" in optional:
            out["gallery_index"] = torch.as_tensor(
                np.asarray(images.index_in_folder)[pos], device=dev
            )
        return out

    def record_fields(self) -> dict[str, Any]:
        mc = dataclasses.asdict(self.mc)
        weights = mc.pop("weights")
        mc.update(
            num_classes=self.num_classes,
            objective_on=self.group,
            weights_sha256=_file_sha256(weights) if weights not in ("", "none") else None,
            third_view=self.rc.third_view,
        )
        split_trial = self.trial  # RegDB: the split trial this run is; SYSU-MM01: None
        out: dict[str, Any] = {
            "benchmark": {
                "name": self.benchmark.name,
                "version": int(getattr(self.benchmark, "version", 1)),
                "data_sha256": self.data.data_sha256,
                "split_id": self.data.split_id,
                "split_sha256": self.split_sha256,
                "trial": split_trial,
            },
            "protocol": self.protocol_id,
            "model": {"name": MODEL_NAME, "params": mc},
        }
        if self.gallery_info is not None:
            out["protocol_gallery"] = dict(self.gallery_info)
        return out


def make_protocol(protocol_id: str, benchmark: Any = None, rand_perm_cam: str | None = None):
    """The protocol instance a run scores with: a SYSU-MM01 protocol looks for its permutations
    in ``rand_perm_cam``, the benchmark's data root, then ``$MV2D_SYSU_RAND_PERM``; the same
    rule as ``mv2d-bench score`` (which has no data root)."""
    from mv2d_bench.registry import registry

    cls = registry("protocols").load(protocol_id)
    if hasattr(cls, "gallery_info"):
        root = getattr(benchmark, "root", None)
        return cls(rand_perm_cam_file=rand_perm_cam, root=root)
    return cls()


def _split_sha256(data) -> str:
    """sha256 of the split's image lists: training paths with labels, query and gallery paths."""
    payload = {
        "train": [list(data.train.paths), np.asarray(data.train.labels).tolist()],
        "query": list(data.query.paths),
        "gallery": list(data.gallery.paths),
    }
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def _file_sha256(path: str) -> str:
    from mv2d_bench.loaders.base import sha256_file

    return sha256_file(path)
