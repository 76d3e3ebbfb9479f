"""ViewOutputs: the contract between models and objectives.

One object per forward pass. Per-view fields are lists indexed by view; each tensor's first
dimension is the items (samples; points for segmentation). Items are aligned across views: item
k of every view belongs to the same object (MVC), the same identity (ReID) or the same point
(segmentation).

Presence: some views do not see every item (a camera sees only the points in its field of view).
``present`` (bool, (items, n_views)) says which view observes which item; ``None`` means every
view sees every item (MVC, ReID). Objectives combine it with the validity ``mask`` per view
through :meth:`ViewOutputs.view_mask`: a term about view i uses the items that are valid and that
view i sees; a term relating views i and j uses the items both see. With ``present=None`` every
view mask is the validity mask itself, so results are exactly those without presence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

import torch
from torch import Tensor

PER_VIEW_FIELDS = ("obs", "obs_logits", "rep", "rep_mean", "rep_std", "rep_logits", "loo_logits")
FIELDS = PER_VIEW_FIELDS + ("fused_logits", "target", "mask", "present")


class StackedList(list):
    """A per-view list whose tensors are the rows of one stacked tensor ``stacked`` (n, items,
    ...): a model may fill a per-view field with it, and an objective that concatenates the
    views (``cat_views``) then reads ``stacked`` instead of copying the n tensors."""

    def __init__(self, stacked: Tensor) -> None:
        super().__init__(stacked.unbind(0))
        self.stacked = stacked


def cat_views(tensors: list[Tensor]) -> Tensor:
    """``torch.cat(tensors)``; a view of the stacked tensor (no copy) for a :class:`StackedList`."""
    stacked = getattr(tensors, "stacked", None)
    if stacked is not None and len(tensors) == stacked.shape[0]:
        return stacked.flatten(0, 1)
    import torch

    return torch.cat(tensors)


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
    present: Tensor | None = None
    """Optional bool tensor (items, n_views): True where view i observes item k (None: every
    view observes every item). Combine with ``mask`` through :meth:`view_mask`."""

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

    def view_mask(self, *views: int) -> Tensor | None:
        """Items that are valid and observed by every view in ``views`` (bool, (items,)).

        ``view_mask(i)`` is the mask of a term about view i alone; ``view_mask(i, j)`` that of a
        term relating views i and j (both must see the item). Returns :meth:`valid` unchanged
        when ``present`` is None (so objectives give exactly their presence-free results), and
        None when neither ``mask`` nor ``present`` is set.
        """
        valid = self.valid()
        if self.present is None or not views:
            return valid
        present = self.present.bool()
        if present.dim() != 2:
            raise ValueError(
                f"ViewOutputs.present must be bool (items, n_views); got shape "
                f"{tuple(present.shape)}"
            )
        for v in views:
            if not 0 <= v < present.shape[1]:
                raise ValueError(
                    f"view {v} is out of range: ViewOutputs.present has {present.shape[1]} views"
                )
        seen = present[:, list(views)].all(dim=1)
        if valid is None:
            return seen
        if valid.shape != seen.shape:
            raise ValueError(
                f"ViewOutputs.mask has shape {tuple(valid.shape)} but present has "
                f"{present.shape[0]} items"
            )
        return valid & seen.to(valid.device)

    def loo_mask(self, i: int) -> Tensor | None:
        """Items of the leave-one-out term of view i: valid, seen by view i and by at least one
        other view (without another view, "all views but i" predicts nothing). :meth:`valid`
        when ``present`` is None."""
        if self.present is None:
            return self.valid()
        mine = self.view_mask(i)
        present = self.present.bool()
        others = torch.cat([present[:, :i], present[:, i + 1 :]], dim=1).any(dim=1)
        return mine & others.to(mine.device)
