"""Every item's outputs as ``cat`` states, with its dataset index: the metric of protocols whose
score needs the whole split at once (ReID retrieval ranks every query against the gallery).

The protocol declares item groups through ``dataset_index_keys`` (ReID: ``{"query":
"query_dataset_index", "gallery": "gallery_dataset_index"}``); each of its npz keys (and optional
npz keys) belongs to the group its name starts with (``gallery_feat`` -> ``gallery``). One
``update`` may carry any of the groups, each with all its required keys, arrays of equal length,
and optionally the group's dataset index (the item's position in the split's dataset order).

``compute()`` (after torchmetrics has gathered the states of every process): per group, sort the
items by dataset index (stable), drop repeated indices (the copies a padding sampler adds; a
repeat whose arrays differ from the first copy is an error), and hand the complete arrays, in
dataset order, to ``protocol.score_split(**arrays)``: the protocol's exact whole-split engine.
Without a dataset index the items keep their ``update`` order (one process only: with several,
the order across processes is not the dataset's, which ``compute()`` refuses).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torchmetrics.utilities import dim_zero_cat

from mv2d_bench.leaderboards.metrics.base import ProtocolMetric
from mv2d_bench.leaderboards.protocols.base import Score


def _cat(parts: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """The items of every ``update`` (and process) in one tensor: ``dim_zero_cat``, except that
    the single part of a one-``update`` split (``Protocol.score``) is used as it is, not copied
    (SYSU-MM01's features are ~90 MB; the engine never writes into its inputs)."""
    if isinstance(parts, list) and len(parts) == 1 and parts[0].ndim > 0:
        return parts[0]
    return dim_zero_cat(parts)


class ItemsMetric(ProtocolMetric):
    def __init__(self, protocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.index_keys: dict[str, str] = dict(protocol.dataset_index_keys)
        optional = dict(getattr(protocol, "optional_npz_keys", {}) or {})
        self.required: dict[str, list[str]] = {g: [] for g in self.index_keys}
        self.optional: dict[str, list[str]] = {g: [] for g in self.index_keys}
        for keys, target in ((protocol.npz_keys, self.required), (optional, self.optional)):
            for key in keys:
                target[self.group_of(key)].append(key)
        for group, index_key in self.index_keys.items():
            for key in (*self.required[group], *self.optional[group], index_key):
                self.add_state(key, default=[], dist_reduce_fx="cat")
            self.add_state(f"_{group}_unindexed", torch.tensor(0), dist_reduce_fx="sum")
        self._next: dict[str, int] = dict.fromkeys(self.index_keys, 0)
        self._indexed: dict[str, bool | None] = dict.fromkeys(self.index_keys)

    def group_of(self, key: str) -> str:
        for group in self.index_keys:
            if key.startswith(f"{group}_"):
                return group
        raise ValueError(
            f"{self.protocol.id}: key {key!r} belongs to no item group "
            f"({', '.join(self.index_keys)})"
        )

    def reset(self) -> None:
        super().reset()
        self._next = dict.fromkeys(self.index_keys, 0)
        self._indexed = dict.fromkeys(self.index_keys)

    def update(self, **arrays: Any) -> None:
        known = {k for g in self.index_keys for k in self.required[g] + self.optional[g]}
        known |= set(self.index_keys.values())
        unknown = sorted(set(arrays) - known)
        if unknown:
            raise TypeError(
                f"{self.protocol.id}: unexpected array(s) {', '.join(unknown)}; update() takes "
                f"{', '.join(sorted(known))}"
            )
        for group, index_key in self.index_keys.items():
            given = [k for k in (*self.required[group], *self.optional[group]) if k in arrays]
            if not given and index_key not in arrays:
                continue
            missing = [k for k in self.required[group] if k not in arrays]
            if missing:
                raise TypeError(
                    f"{self.protocol.id}: a {group} batch needs {', '.join(self.required[group])}"
                    f"; missing {', '.join(missing)}"
                )
            tensors = {}
            for k in given:
                try:
                    tensors[k] = self.as_tensor(arrays[k])
                except ValueError as exc:
                    raise ValueError(f"key {k}: {exc}") from None
                if tensors[k].ndim == 0:
                    raise ValueError(f"key {k}: expected one entry per item, got a scalar")
            first = self.required[group][0]
            n = tensors[first].shape[0]
            for k, t in tensors.items():
                if t.shape[0] != n:
                    want = f"shape ({n},)" if t.ndim == 1 else f"{n} rows"
                    raise ValueError(
                        f"key {k}: expected {want} to match {first}, got {tuple(t.shape)}"
                    )
            indexed = index_key in arrays
            if self._indexed[group] is not None and self._indexed[group] != indexed:
                raise ValueError(
                    f"key {index_key}: given for some {group} batches only (give it for every "
                    "batch or for none)"
                )
            self._indexed[group] = indexed
            if indexed:
                index = self.as_tensor(arrays[index_key])
                if index.ndim != 1 or index.shape[0] != n or index.dtype.is_floating_point:
                    raise ValueError(
                        f"key {index_key}: expected ({n},) integer dataset indices, got "
                        f"{index.dtype} {tuple(index.shape)}"
                    )
                index = index.long()
            else:
                start = self._next[group]
                index = torch.arange(start, start + n, dtype=torch.int64, device=self.device)
                self._next[group] = start + n
                unindexed = getattr(self, f"_{group}_unindexed")
                setattr(self, f"_{group}_unindexed", unindexed + n)
            for k, t in tensors.items():
                getattr(self, k).append(t)
            getattr(self, index_key).append(index)

    def compute(self) -> Score:
        arrays: dict[str, torch.Tensor] = {}
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        for group, index_key in self.index_keys.items():
            parts = getattr(self, index_key)
            if isinstance(parts, list) and not parts:
                raise ValueError(
                    f"{self.protocol.id}: no {group} items were given "
                    f"(keys {', '.join(self.required[group])})"
                )
            if world > 1 and int(getattr(self, f"_{group}_unindexed")) > 0:
                raise ValueError(
                    f"key {index_key}: required when {world} processes update the metric (the "
                    f"order of the {group} items across processes is not the dataset order)"
                )
            index = _cat(parts)
            ordered = bool((index[1:] > index[:-1]).all())  # already dataset order, no repeats
            if not ordered:
                order = torch.argsort(index, stable=True)
                index = index[order]
                keep = torch.ones_like(index, dtype=torch.bool)
                keep[1:] = index[1:] != index[:-1]
                first = torch.cummax(
                    torch.where(keep, torch.arange(index.numel(), device=index.device), 0), 0
                ).values
                repeats = (~keep).nonzero().flatten()
            for key in (*self.required[group], *self.optional[group]):
                state = getattr(self, key)
                if isinstance(state, list) and not state:
                    continue
                values = _cat(state)
                if values.shape[0] != index.numel():
                    raise ValueError(
                        f"key {key}: given for some {group} batches only ({values.shape[0]} of "
                        f"{index.numel()} items)"
                    )
                if not ordered:
                    values = values[order.to(values.device)]
                    if repeats.numel():
                        rep = repeats.to(values.device)
                        if not torch.equal(values[rep], values[first[rep].to(values.device)]):
                            raise ValueError(
                                f"key {key}: a {group} item given twice (same {index_key}) has "
                                "different values"
                            )
                    values = values[keep.to(values.device)]
                arrays[key] = values
        return self.protocol.score_split(**arrays)
