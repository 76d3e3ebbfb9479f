"""The three-branch visible-infrared ReID network (the paper's Figure 3).

Three torchvision ResNet branches: a visible-specific one E_V, an infrared-specific one E_I and a
modality-shared one E_S. Each branch is

    image -> ResNet trunk (last stride 1) -> global average pool -> f (pre-BN feature)
          -> BN-neck -> v (the observation)          -> head -> P_v logits
          -> Gaussian bottleneck (MLP 2048-1024-512 -> 2 x 256: mean, softplus std) -> z
          -> head -> P_z logits

``z`` is a reparameterised sample in training mode and the mean in eval mode. The model's
:meth:`ReidNet.forward` runs the visible branch on the visible images, the infrared branch on the
infrared images and the shared branch on both (and on the intermediate images when given) in one
batched pass, returning a :class:`BranchOutput` per (branch, modality). :func:`view_outputs`
assembles the views an objective sees (see :data:`GROUPS`): items align by identity because the
identity-paired sampler puts item ``j`` of every modality on the same person.

Backbone weights come from a local file only (``weights=`` a path to a torchvision ResNet state
dict, e.g. ``resnet50-0676ba61.pth`` saved from torchvision); with ``weights=None`` the network is
randomly initialised. Nothing is ever downloaded. Pure and device-agnostic.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mv2d_bench.models.bottleneck import GaussianBottleneck
from mv2d_bench.models.fusion import LeaveOneOutFusion, MeanFusion
from mv2d_bench.views import ViewOutputs

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
EVAL_FEATURES = ("concat", "shared", "specific", "obs")

BRANCH_KEYS = (
    "visible",
    "infrared",
    "shared_visible",
    "shared_infrared",
    "shared_intermediate",
    "shared_intermediate_infrared",
)
"""Keys of :meth:`ReidNet.forward`'s result: branch (and, for the shared one, the modality;
``shared_intermediate`` is the grayscale copy of the visible images, ``..._infrared`` that of
the infrared images)."""

THIRD_VIEWS = ("gray-visible", "gray-both", "none")
"""The intermediate modality (``reid.third_view``): grayscale copies of the visible images,
of both modalities, or none."""
THIRD_VIEW_KEYS = {
    "gray-visible": ("shared_intermediate",),
    "gray-both": ("shared_intermediate", "shared_intermediate_infrared"),
    "none": (),
}

GROUPS: dict[str, tuple[str, ...]] = {
    "specific": ("visible", "infrared"),
    "shared": ("shared_visible", "shared_infrared"),
    "branches": ("visible", "infrared", "shared_visible", "shared_infrared"),
    "mv2d": ("visible", "infrared", "shared_intermediate"),
}
"""The views an objective can be applied to, by group name:

* ``specific``: E_V on visible images, E_I on infrared images (the paper's VSD);
* ``shared``: E_S on visible images, E_S on infrared images (VCD and VMD);
* ``branches``: all four (per-view objectives such as VIB, CIB or VSD on every bottleneck);
* ``mv2d``: visible (E_V), infrared (E_I) and the intermediate modality through E_S - three
  views for MV2D (with ``third_view="gray-both"`` four: the grayscale copies of both
  modalities; with ``"none"`` two). :func:`group_keys` applies the third view.
"""


def group_keys(group: str, third_view: str = "gray-visible") -> tuple[str, ...]:
    """The branch outputs (views) of ``group`` for a third view (:data:`THIRD_VIEWS`)."""
    if group not in GROUPS:
        raise ValueError(f"view group must be one of {', '.join(GROUPS)}; got {group!r}")
    if third_view not in THIRD_VIEWS:
        raise ValueError(f"third_view must be one of {', '.join(THIRD_VIEWS)}; got {third_view!r}")
    if group != "mv2d":
        return GROUPS[group]
    return ("visible", "infrared", *THIRD_VIEW_KEYS[third_view])


def resnet_trunk(
    backbone: str = "resnet50",
    weights: str | os.PathLike | None = None,
    last_stride: int = 1,
) -> tuple[nn.Sequential, int]:
    """A torchvision ResNet without its pooling and classifier, and its feature width.

    ``weights`` is a local torchvision state dict for ``backbone`` (its ``fc.*`` entries are
    ignored); ``last_stride`` 1 removes the down-sampling of ``layer4`` (feature maps of
    H/16 x W/16 instead of H/32 x W/32), as is usual in ReID.
    """
    import torchvision

    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}; got {backbone!r}")
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2; got {last_stride}")
    net = getattr(torchvision.models, backbone)(weights=None)
    if weights:
        load_backbone_weights(net, weights, backbone)
    if last_stride == 1:
        for module in net.layer4[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                module.stride = (1, 1)
    trunk = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )
    return trunk, int(net.fc.in_features)


def load_backbone_weights(net: nn.Module, path: str | os.PathLike, backbone: str = "") -> None:
    """Load a local torchvision ResNet state dict into ``net`` (``fc.*`` ignored).

    Accepts a plain state dict, one under a ``state_dict`` key, and keys prefixed ``module.``
    (saved from ``DataParallel``). Anything else is an error naming the file and the keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: backbone weights file not found (model.weights)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path}: not a torch state dict file ({exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor) of a {backbone} network")
    state = {k.removeprefix("module."): v for k, v in state.items() if not _is_fc(k)}
    expected = {k for k in net.state_dict() if not _is_fc(k)}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a torchvision {backbone or 'ResNet'} state dict: "
            f"{len(missing)} missing key(s) {missing[:3]}, "
            f"{len(unexpected)} unexpected key(s) {unexpected[:3]}"
        )
    own = net.state_dict()
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise ValueError(
            f"{path}: {len(bad)} tensor(s) of the wrong shape for {backbone}, e.g. {k}: "
            f"{tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
        )
    net.load_state_dict(state, strict=False)


def _is_fc(key: str) -> bool:
    return key.removeprefix("module.").startswith("fc.")


@dataclass
class BranchOutput:
    """What one branch computes for one batch of images (items first)."""

    feat: Tensor
    """f: the pooled backbone feature before the BN-neck, (B, d_v) (the triplet loss's input)."""
    obs: Tensor
    """v: the BN-neck feature, (B, d_v)."""
    obs_logits: Tensor
    rep: Tensor
    """z: a sample of q(z|v) in training mode, the mean in eval mode, (B, d_z)."""
    rep_mean: Tensor
    rep_std: Tensor
    rep_logits: Tensor

    def split(self, sizes: Sequence[int]) -> list[BranchOutput]:
        """Split along the items; fields that are one tensor (no bottleneck: z is v) stay one."""
        done: dict[int, tuple[Tensor, ...]] = {}
        parts = []
        for name in _BRANCH_FIELDS:
            t = getattr(self, name)
            if id(t) not in done:
                done[id(t)] = t.split(list(sizes))
            parts.append(done[id(t)])
        return [BranchOutput(*chunk) for chunk in zip(*parts, strict=True)]


_BRANCH_FIELDS = ("feat", "obs", "obs_logits", "rep", "rep_mean", "rep_std", "rep_logits")


class MlpGaussianBottleneck(nn.Module):
    """The ReID bottleneck: an MLP ``in_dim - hidden[0] - ... - hidden[-1]`` (ReLU) to
    2 x ``z_dim`` numbers, mean and softplus std (the paper: 2048-1024-512 -> 2 x 256).

    The last hidden layer and the Gaussian head are :class:`GaussianBottleneck` (sampling in
    training mode, the mean in eval mode); the earlier hidden layers come before it.
    ``forward(v) -> (z, mean, std)``.
    """

    def __init__(self, in_dim: int, z_dim: int, hidden: Sequence[int] = (1024, 512)) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if any(h < 1 for h in hidden):
            raise ValueError(f"bottleneck hidden widths must be >= 1; got {hidden}")
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden[:-1]:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True)]
            d = h
        self.pre = nn.Sequential(*layers)
        self.gaussian = GaussianBottleneck(d, z_dim, hidden=hidden[-1] if hidden else 0)

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.gaussian(self.pre(v))


class DeterministicBottleneck(nn.Module):
    """The MV2D authors' released ReID bottleneck: ``in_dim - hidden[0] - ... - z_dim`` with
    BatchNorm and ReLU after each hidden layer (their 2048-1000-500-512), no sampling:
    ``forward(v) -> (z, z, zeros)`` (mean = z, std = 0)."""

    def __init__(self, in_dim: int, z_dim: int, hidden: Sequence[int] = (1000, 500)) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if any(h < 1 for h in hidden) or z_dim < 1:
            raise ValueError(f"bottleneck widths must be >= 1; got {hidden} -> {z_dim}")
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            d = h
        layers.append(nn.Linear(d, z_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self.net(v)
        return z, z, torch.zeros_like(z)


def mlp_head(z_dim: int, num_classes: int) -> nn.Sequential:
    """The authors' classifier on z: ``z - z/2`` with BatchNorm, LeakyReLU(0.1), dropout 0.5,
    then ``z/2 - classes``."""
    half = max(1, z_dim // 2)
    return nn.Sequential(
        nn.Linear(z_dim, half),
        nn.BatchNorm1d(half),
        nn.LeakyReLU(0.1),
        nn.Dropout(0.5),
        nn.Linear(half, num_classes),
    )


BOTTLENECK_TYPES = ("gaussian", "deterministic")
REP_HEADS = ("linear", "mlp")


class Branch(nn.Module):
    """One ResNet branch with its BN-neck, Gaussian bottleneck and the two heads."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        weights: str | os.PathLike | None = None,
        last_stride: int = 1,
        z_dim: int = 256,
        hidden: Sequence[int] = (1024, 512),
        bottleneck: bool = True,
        bottleneck_type: str = "gaussian",
        rep_head: str = "linear",
    ) -> None:
        super().__init__()
        if bottleneck_type not in BOTTLENECK_TYPES:
            raise ValueError(
                f"bottleneck_type must be one of {', '.join(BOTTLENECK_TYPES)}; "
                f"got {bottleneck_type!r}"
            )
        if rep_head not in REP_HEADS:
            raise ValueError(f"rep_head must be one of {', '.join(REP_HEADS)}; got {rep_head!r}")
        self.trunk, self.feat_dim = resnet_trunk(backbone, weights, last_stride)
        self.neck = nn.BatchNorm1d(self.feat_dim)
        self.neck.bias.requires_grad_(False)  # BN-neck: no shift (Luo et al., 2019)
        self.obs_head = nn.Linear(self.feat_dim, num_classes, bias=False)
        nn.init.normal_(self.obs_head.weight, std=0.001)
        if bottleneck:
            cls = (
                MlpGaussianBottleneck if bottleneck_type == "gaussian" else DeterministicBottleneck
            )
            self.bottleneck = cls(self.feat_dim, z_dim, hidden)
            self.rep_head = (
                nn.Linear(z_dim, num_classes)
                if rep_head == "linear"
                else mlp_head(z_dim, num_classes)
            )
        else:  # the "no bottleneck" ablation: z = v, P_z = P_v
            self.bottleneck = self.rep_head = None

    def feature_map(self, images: Tensor) -> Tensor:
        return self.trunk(images)

    def forward(self, images: Tensor) -> BranchOutput:
        feat = F.adaptive_avg_pool2d(self.trunk(images), 1).flatten(1)
        obs = self.neck(feat)
        obs_logits = self.obs_head(obs)
        if self.bottleneck is None:
            return BranchOutput(feat, obs, obs_logits, obs, obs, torch.zeros_like(obs), obs_logits)
        rep, mean, std = self.bottleneck(obs)
        return BranchOutput(
            feat=feat,
            obs=obs,
            obs_logits=obs_logits,
            rep=rep,
            rep_mean=mean,
            rep_std=std,
            rep_logits=self.rep_head(rep),
        )


class ReidNet(nn.Module):
    """Visible-specific, infrared-specific and shared branches, and a fusion head over z.

    ``num_classes`` is the number of training identities. ``weights`` (a local torchvision state
    dict path, or None) initialises all three backbones. ``eval_feature`` chooses what
    :meth:`embed` returns for retrieval: ``concat`` (default) the L2-normalised bottleneck means
    of the image's specific branch and of the shared branch, concatenated; ``shared`` or
    ``specific`` one of them; ``obs`` the two BN-neck observations, concatenated the same way.
    ``bottleneck=False`` is the "no bottleneck" ablation: z = v and P_z = P_v in every branch (the
    retrieval feature is then v). ``bottleneck_type="deterministic"`` and ``rep_head="mlp"`` are
    the authors' released bottleneck and classifier on z (:class:`DeterministicBottleneck`,
    :func:`mlp_head`).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        weights: str | os.PathLike | None = None,
        last_stride: int = 1,
        z_dim: int = 256,
        hidden: Sequence[int] = (1024, 512),
        eval_feature: str = "concat",
        bottleneck: bool = True,
        bottleneck_type: str = "gaussian",
        rep_head: str = "linear",
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2; got {num_classes}")
        if eval_feature not in EVAL_FEATURES:
            raise ValueError(
                f"eval_feature must be one of {', '.join(EVAL_FEATURES)}; got {eval_feature!r}"
            )
        kw = dict(
            num_classes=num_classes,
            backbone=backbone,
            weights=weights,
            last_stride=last_stride,
            z_dim=z_dim,
            hidden=hidden,
            bottleneck=bottleneck,
            bottleneck_type=bottleneck_type,
            rep_head=rep_head,
        )
        self.visible = Branch(**kw)
        self.infrared = Branch(**kw)
        self.shared = Branch(**kw)
        self.feat_dim = self.visible.feat_dim
        self.z_dim = z_dim if bottleneck else self.feat_dim
        """Width of z (the observation width without a bottleneck)."""
        self.fusion = LeaveOneOutFusion(MeanFusion(self.z_dim, num_classes))
        self.num_classes, self.eval_feature = num_classes, eval_feature

    def forward(
        self,
        visible: Tensor,
        infrared: Tensor,
        intermediate: Tensor | None = None,
        intermediate_infrared: Tensor | None = None,
    ) -> dict[str, BranchOutput]:
        """Branch outputs keyed by :data:`BRANCH_KEYS` (``shared_intermediate`` and
        ``shared_intermediate_infrared`` only when those images are given). The shared branch
        sees all its inputs in one pass."""
        out = {"visible": self.visible(visible), "infrared": self.infrared(infrared)}
        extra = [
            (k, x)
            for k, x in (
                ("shared_intermediate", intermediate),
                ("shared_intermediate_infrared", intermediate_infrared),
            )
            if x is not None
        ]
        shared_in = [visible, infrared] + [x for _, x in extra]
        shared = self.shared(torch.cat(shared_in)).split([len(x) for x in shared_in])
        out["shared_visible"], out["shared_infrared"] = shared[0], shared[1]
        for (key, _), o in zip(extra, shared[2:], strict=True):
            out[key] = o
        return out

    @torch.no_grad()
    def embed(self, images: Tensor, modality: str) -> Tensor:
        """Retrieval features of ``images`` of one ``modality`` ("visible" or "infrared").

        Uses the bottleneck means (or BN-neck observations for ``eval_feature="obs"``) whatever
        the mode, so the features are deterministic.
        """
        if modality not in ("visible", "infrared"):
            raise ValueError(f"modality must be 'visible' or 'infrared'; got {modality!r}")
        parts = []
        if self.eval_feature != "shared":
            parts.append(getattr(self, modality))
        if self.eval_feature != "specific":
            parts.append(self.shared)
        feats = []
        for branch in parts:
            out = branch(images)
            x = out.obs if self.eval_feature == "obs" else out.rep_mean
            feats.append(F.normalize(x.float(), dim=1))
        return torch.cat(feats, dim=1)

    @property
    def embed_dim(self) -> int:
        per = self.feat_dim if self.eval_feature == "obs" else self.z_dim
        return per * (1 if self.eval_feature in ("shared", "specific") else 2)


def view_outputs(
    model: ReidNet,
    branches: dict[str, BranchOutput],
    group: str,
    target: Tensor,
    needs: frozenset[str] = frozenset(),
    third_view: str = "gray-visible",
) -> ViewOutputs:
    """The ViewOutputs of ``group`` (see :data:`GROUPS` and :func:`group_keys`); fused and
    leave-one-out logits are computed (in one batched pass) only when ``needs`` asks for them."""
    keys = group_keys(group, third_view)
    missing = [k for k in keys if k not in branches]
    if missing:
        raise ValueError(
            f"view group {group!r} needs branch output(s) {', '.join(missing)} "
            "(the intermediate view needs intermediate images)"
        )
    outs = [branches[k] for k in keys]
    out = ViewOutputs(
        obs=[o.obs for o in outs],
        obs_logits=[o.obs_logits for o in outs],
        rep=[o.rep for o in outs],
        rep_mean=[o.rep_mean for o in outs],
        rep_std=[o.rep_std for o in outs],
        rep_logits=[o.rep_logits for o in outs],
        target=target,
    )
    if "fused_logits" in needs or "loo_logits" in needs:
        fused, loo = model.fusion(out.rep, loo="loo_logits" in needs)
        out.fused_logits, out.loo_logits = fused, loo
    return out
