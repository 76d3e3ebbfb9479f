"""The MVC task's configuration sections: ``[model]`` (one dataclass per model) and ``[loss]``.

``[model]`` is resolved by ``model.name``:

* ``"multiview-ib"`` (:class:`MultiViewIBConfig`): the MV2D paper's network - MvNNcor-style
  per-view encoders (512-256), Gaussian bottlenecks, heads on v and z, ``model.fusion``. Every
  paper preset (``configs/paper/mvc.toml``) uses it.
* ``"mvnncor"`` (:class:`MvNNcorConfig`): the released MvNNcor (400-200 encoders, relation
  module, view weights with gamma = 6, N(0, 0.02) init); ``configs/baselines/mvnncor.toml``.

Deprecated: before MvNNcor itself was available, ``"mvnncor"`` named the network that is now
``"multiview-ib"``. A ``[model]`` table that says ``name = "mvnncor"`` together with any key only
that network has (``bottleneck``, ``z_dim``, ``bottleneck_hidden``, ``min_std``, ``fusion``,
``relation_rank``) still selects it, with a FutureWarning; write ``name = "multiview-ib"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mv2d_bench.config import ConfigError

FUSION_NAMES = ("relation-full", "relation-lowrank", "concat", "mean")
RANK_TYPES = ("triplet", "ranked-list")
RANK_FEATURES = ("obs", "rep")


@dataclass
class MultiViewIBConfig:
    name: str = "multiview-ib"
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    """Widths of each view's MLP (the last is the observation v_i)."""
    dropout: float = 0.5
    bottleneck: bool = True
    """False: the 'no bottleneck' ablation (z_i = v_i)."""
    z_dim: int = 128
    bottleneck_hidden: int = 128
    """Hidden width of the bottleneck MLP v -> 2 x z_dim (0: one linear map)."""
    min_std: float = 1e-4
    fusion: str = "relation-lowrank"
    """p(y | z_S): relation-full (MvNNcor's f_psi), relation-lowrank, concat or mean."""
    relation_rank: int = 16
    """Rank r of the relation-lowrank pair relations."""
    classifier_hidden: int = 128
    """Hidden width of the fusion's classifier."""
    fusion_dropout: float = 0.5
    distill_through_heads: bool = False
    """False (the paper's Eq. 9): the objective's terms train only the encoders and bottlenecks
    (heads and fusion see them through detached parameters). True: they train everything."""

    def check_section(self, where: Callable[[str], str]) -> None:
        check_model_config(self, where)


@dataclass
class MvNNcorConfig:
    name: str = "mvnncor"
    hidden: list[int] = field(default_factory=lambda: [400, 200])
    """Per-view MLP widths: [2 fea_out, fea_out] (MvNNcor: fea_out = 200)."""
    dropout: float = 0.5
    classifier_hidden: int = 300
    """fea_com, the shared classifier's hidden width."""
    fusion_dropout: float = 0.5
    gamma: float = 6.0
    """Power of the view weights in the loss sum_v w_v^gamma CE_v."""
    init_std: float = 0.02
    """Linear weights ~ N(0, init_std) (MvNNcor's init_weights 'normal'); 0: torch's default."""
    distill_through_heads: bool = False
    """As for multiview-ib, when an objective is trained with MvNNcor."""

    def check_section(self, where: Callable[[str], str]) -> None:
        check_model_config(self, where)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_model_config(mc: Any, where: Callable[[str], str] | None = None) -> None:
    """Range checks of either model's ``[model]`` values, naming the key and where it was set
    (the constructors' own errors do not say which key of the config was wrong); run when the
    config is read, before any output folder is made."""

    def _require(ok: bool, key: str, expected: str, got: Any) -> None:
        if not ok:
            src = where(key) if where is not None else "config"
            raise ConfigError(f"{src}: 'model.{key}' must be {expected}; got {got!r}")

    hidden = list(mc.hidden)
    _require(bool(hidden) and all(_is_int(h) and h > 0 for h in hidden), "hidden",
             "a non-empty list of integers > 0", mc.hidden)  # fmt: skip
    for key in ("dropout", "fusion_dropout"):
        v = getattr(mc, key)
        _require(0.0 <= v < 1.0, key, "a probability in [0, 1)", v)
    _require(_is_int(mc.classifier_hidden) and mc.classifier_hidden > 0, "classifier_hidden",
             "an integer > 0", mc.classifier_hidden)  # fmt: skip
    if isinstance(mc, MvNNcorConfig):
        _require(mc.gamma > 1.0, "gamma", "a number > 1 (the view-weight power)", mc.gamma)
        _require(mc.init_std >= 0.0, "init_std", "a number >= 0 (0: torch's default)",
                 mc.init_std)  # fmt: skip
        return
    _require(_is_int(mc.z_dim) and mc.z_dim > 0, "z_dim", "an integer > 0", mc.z_dim)
    _require(_is_int(mc.bottleneck_hidden) and mc.bottleneck_hidden >= 0, "bottleneck_hidden",
             "an integer >= 0 (0: one linear map)", mc.bottleneck_hidden)  # fmt: skip
    _require(mc.min_std >= 0.0, "min_std", "a number >= 0", mc.min_std)
    _require(_is_int(mc.relation_rank) and mc.relation_rank > 0, "relation_rank",
             "an integer > 0", mc.relation_rank)  # fmt: skip


MODELS: dict[str, type] = {"multiview-ib": MultiViewIBConfig, "mvnncor": MvNNcorConfig}
LEGACY_KEYS = ("bottleneck", "z_dim", "bottleneck_hidden", "min_std", "fusion", "relation_rank")
DEPRECATION = (
    "model.name 'mvnncor' with the keys of the MV2D network ({keys}) selects that network, now "
    "called 'multiview-ib'; write name = 'multiview-ib' (model.name 'mvnncor' alone is the "
    "released MvNNcor, configs/baselines/mvnncor.toml). This spelling will stop working."
)


class MvcModelSection:
    """The ``[model]`` table: resolves to the dataclass of ``model.name``."""

    @staticmethod
    def resolve_section(
        values: dict[str, Any], where: Callable[[str], str]
    ) -> tuple[type, dict[str, Any]]:
        values = dict(values)
        name = values.get("name", "multiview-ib")
        if name == "mvnncor":
            legacy = [k for k in LEGACY_KEYS if k in values]
            if legacy:
                warnings.warn(DEPRECATION.format(keys=", ".join(legacy)), FutureWarning, 2)
                values["name"] = name = "multiview-ib"
        if name not in MODELS:
            raise ConfigError(
                f"{where('name')}: 'model.name' must be one of {', '.join(MODELS)} for MVC; "
                f"got {name!r}"
            )
        cls = MODELS[name]
        if cls is MultiViewIBConfig and "fusion" in values:
            if values["fusion"] not in FUSION_NAMES:
                raise ConfigError(
                    f"{where('fusion')}: 'model.fusion' must be one of {', '.join(FUSION_NAMES)}; "
                    f"got {values['fusion']!r}"
                )
        return cls, values


@dataclass
class MvcLossConfig:
    """``[loss]``: the task loss of ``multiview-ib`` (``mvnncor`` has its own, see below)."""

    ce_obs: float = 1.0
    ce_rep: float = 1.0
    ce_fused: float = 1.0
    rank: float = 1.0
    rank_type: str = "triplet"
    """'triplet' (batch-hard, Euclidean, margin rank_margin) or 'ranked-list' (the MV2D authors'
    weighted ranked-list loss on L2-normalised features, ranked_list_alpha / ranked_list_margin)."""
    rank_on: list[str] = field(default_factory=lambda: ["obs", "rep"])
    """Features the rank loss is applied to: 'obs' (v_i) and/or 'rep' (z_i), as the paper's
    appendix does (mean over the views of each)."""
    rank_margin: float = 0.3
    ranked_list_alpha: float = 2.2
    ranked_list_margin: float = 0.9
    ranked_list_temperature: float = 1.0
    label_smoothing: float = 0.0

    def check(self, model_name: str) -> None:
        if self.rank_type not in RANK_TYPES:
            raise ConfigError(
                f"config: 'loss.rank_type' must be one of {', '.join(RANK_TYPES)}; "
                f"got {self.rank_type!r}"
            )
        bad = [f for f in self.rank_on if f not in RANK_FEATURES]
        if bad or not self.rank_on or len(set(self.rank_on)) != len(self.rank_on):
            raise ConfigError(
                "config: 'loss.rank_on' must list 'obs' and/or 'rep' once each; "
                f"got {self.rank_on!r}"
            )
        if model_name == "mvnncor":
            default = MvcLossConfig()
            changed = [
                k
                for k in ("ce_obs", "ce_rep", "ce_fused", "rank")
                if getattr(self, k) != getattr(default, k)
            ]
            if changed:
                raise ConfigError(
                    f"config: 'loss.{changed[0]}' does not apply to model 'mvnncor', whose loss "
                    "is its view-weighted cross-entropy sum_v w_v^gamma CE_v only (of [loss], "
                    f"only label_smoothing applies); got {getattr(self, changed[0])!r}"
                )
