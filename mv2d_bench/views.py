"""ViewOutputs: the contract between models and objectives.

One object per forward pass. Per-view fields are lists indexed by view; each tensor's first
dimension is the items (samples; points for segmentation). Items are aligned across views: item
k of every view belongs to the same object (MVC), the same identity (ReID) or the same point
(segmentation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from torch import Tensor

PER_VIEW_FIELDS = ("obs", "obs_logits", "rep", "rep_mean", "rep_std", "rep_logits", "loo_logits")
FIELDS = PER_VIEW_FIELDS + ("fused_logits", "target", "mask")


class MissingFieldError(ValueError):
    """An objective needs a ViewOutputs field that the model did not fill."""


@dataclass
class ViewOutputs:
    obs: list[Tensor] | None = None
    """v_i = E_theta(x_i), the backbone observation of each view, (items, d_v)."""
    obs_logits: list[Tensor] | None = None
    """Logits of p(y | v_i), (items, classes)."""
    rep: list[Tensor] | None = None
    """z_i: the representation used downstream (a sample while training, the mean at test)."""
    rep_mean: list[Tensor] | None = None
    """Mean of the Gaussian bottleneck q(z_i | v_i), (items, d_z)."""
    rep_std: list[Tensor] | None = None
    """Standard deviation of q(z_i | v_i), (items, d_z), positive."""
    rep_logits: list[Tensor] | None = None
    """Logits of p(y | z_i), (items, classes)."""
    fused_logits: Tensor | None = None
    """Logits of p(y | z_1..z_n), all views fused, (items, classes)."""
    loo_logits: list[Tensor] | None = None
    """Entry i: logits of p(y | all views but i), (items, classes)."""
    target: Tensor | None = None
    """Class index per item, (items,)."""
    mask: Tensor | None = None
    """Optional bool tensor (items,): True where the item is valid (not an ignore label)."""

    @property
    def n_views(self) -> int:
        for name in PER_VIEW_FIELDS:
            value = getattr(self, name)
            if value is not None:
                return len(value)
        raise MissingFieldError("ViewOutputs has no per-view field set; cannot tell the views")

    def require(self, owner: str, names: Iterable[str]) -> None:
        """Raise a MissingFieldError naming ``owner`` and each field it needs that is not set."""
        known = {f.name for f in fields(self)}
        missing = []
        for name in names:
            if name not in known:
                raise MissingFieldError(f"{owner} needs {name!r}, which is not a ViewOutputs field")
            value = getattr(self, name)
            if value is None or (isinstance(value, list) and len(value) == 0):
                missing.append(name)
        if missing:
            raise MissingFieldError(
                f"objective {owner!r} needs ViewOutputs field(s) {', '.join(missing)}, "
                "which the model did not provide"
            )

    def valid(self) -> Tensor | None:
        """The validity mask as bool, or None when every item is valid."""
        return None if self.mask is None else self.mask.bool()
