"""The identity-paired sampler of visible-infrared ReID.

Every batch holds ``P`` identities and, for each of them, ``K`` visible and ``K`` infrared images
(the paper: 8 x (4 + 4)). Item ``j`` of the visible half and item ``j`` of the infrared half show
the same person, so the two modalities form two views whose items align by identity, which is what
the cross-view objectives (VCD, VMD, MV2D) compare.

Order inside a batch: identity-major, ``j = p * K + k`` is the ``k``-th image of the ``p``-th
identity in either modality.

Sampling rules:

- Only identities with at least one image in *both* modalities are sampled (the others cannot be
  paired); :attr:`IdentityPairedSampler.dropped` lists the ones left out.
- The ``P`` identities of one batch are distinct. They are taken in turn from a stream of random
  permutations of all identities, so over an epoch every identity comes up equally often (to
  within one).
- For one identity and modality, ``K`` images are drawn without replacement when it has at
  least ``K``, with replacement when it has fewer.
- Everything is drawn from the ``torch.Generator`` given to :meth:`IdentityPairedSampler.batches`,
  so a seeded generator reproduces the batches exactly (on any machine: CPU generator only).

Epoch definition (``epoch``):

- ``"identities"`` (default): ``ceil(n_identities / P)`` batches, one pass over a permutation of
  the identities (the last batch is completed from the next permutation). This is the epoch of
  the identity sampler in the paper authors' released ReID code (open-reid's
  ``RandomIdentitySampler``: every identity once per epoch), which their 300 epochs count.
- ``"images"`` (the AGW/DDAG convention): ``ceil(max(n_visible, n_infrared) / (P * K))``
  batches, so one epoch draws about as many images of each modality as the larger modality
  holds (SYSU-MM01: 696 batches of 8 x (4 + 4) instead of 50).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

EPOCH_DEFINITIONS = ("identities", "images")


@dataclass(frozen=True)
class PairedBatch:
    """Indices of one batch: ``visible[j]`` and ``infrared[j]`` show identity ``labels[j]``."""

    visible: Tensor
    """(P * K,) int64 indices into the visible images."""
    infrared: Tensor
    """(P * K,) int64 indices into the infrared images."""
    identities: Tensor
    """(P,) the identities of the batch, in order."""
    labels: Tensor
    """(P * K,) the identity of each item (``identities`` repeated ``K`` times each)."""


class IdentityPairedSampler:
    """Batches of ``P`` identities x (``K`` visible + ``K`` infrared) images, aligned by identity.

    ``visible_ids`` and ``infrared_ids`` give the identity of every visible and every infrared
    image (any integers; the batch reports them unchanged). See the module docstring for the
    sampling rules and the epoch definition.

    Use :meth:`batches` with a seeded generator; iterating the sampler itself yields, for a
    ``torch.utils.data.DataLoader(batch_sampler=...)``, lists of ``(visible_index,
    infrared_index)`` pairs drawn from ``seed`` and the epoch set by :meth:`set_epoch`.
    """

    def __init__(
        self,
        visible_ids: Sequence[int] | np.ndarray | Tensor,
        infrared_ids: Sequence[int] | np.ndarray | Tensor,
        p: int = 8,
        k: int = 4,
        epoch: str = "identities",
        seed: int = 0,
    ) -> None:
        if p < 1 or k < 1:
            raise ValueError(
                f"identities per batch p and images per identity k must be >= 1; got p={p}, k={k}"
            )
        if epoch not in EPOCH_DEFINITIONS:
            raise ValueError(f"epoch must be one of {', '.join(EPOCH_DEFINITIONS)}; got {epoch!r}")
        self.p, self.k, self.epoch_definition, self.seed = int(p), int(k), epoch, int(seed)
        vis = _as_ids(visible_ids, "visible_ids")
        ir = _as_ids(infrared_ids, "infrared_ids")
        self.n_visible, self.n_infrared = int(vis.numel()), int(ir.numel())
        self._vis_pos = _positions(vis)
        self._ir_pos = _positions(ir)
        both = sorted(set(self._vis_pos) & set(self._ir_pos))
        self.dropped = sorted(set(self._vis_pos) ^ set(self._ir_pos))
        """Identities with images in only one modality (never sampled)."""
        if len(both) < self.p:
            raise ValueError(
                f"a batch needs p={self.p} distinct identities with both visible and infrared "
                f"images; only {len(both)} have both"
            )
        self.identities = torch.tensor(both, dtype=torch.int64)
        """The sampled identities (those with images in both modalities), sorted."""
        self._epoch = 0

    @property
    def batch_size(self) -> int:
        """Images per modality in one batch (``P * K``)."""
        return self.p * self.k

    def __len__(self) -> int:
        if self.epoch_definition == "identities":
            return -(-len(self.identities) // self.p)
        return -(-max(self.n_visible, self.n_infrared) // self.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[PairedBatch]:
        """The batches of one epoch, every random choice drawn from ``generator``."""
        stream: list[int] = []
        n_ids = len(self.identities)
        for _ in range(len(self)):
            chosen: list[int] = []
            while len(chosen) < self.p:
                if not stream:
                    stream = torch.randperm(n_ids, generator=generator).tolist()
                # The first identity of the stream not yet in this batch (distinct identities).
                pos = next((i for i, c in enumerate(stream) if c not in chosen), None)
                if pos is None:  # all remaining ones already chosen: start the next permutation
                    stream += torch.randperm(n_ids, generator=generator).tolist()
                    continue
                chosen.append(stream.pop(pos))
            ids = self.identities[chosen]
            vis = [self._draw(self._vis_pos[int(i)], generator) for i in ids]
            ir = [self._draw(self._ir_pos[int(i)], generator) for i in ids]
            yield PairedBatch(
                visible=torch.cat(vis),
                infrared=torch.cat(ir),
                identities=ids,
                labels=ids.repeat_interleave(self.k),
            )

    def _draw(self, positions: Tensor, generator: torch.Generator) -> Tensor:
        n = positions.numel()
        if n >= self.k:
            pick = torch.randperm(n, generator=generator)[: self.k]
        else:
            pick = torch.randint(n, (self.k,), generator=generator)
        return positions[pick]

    # -- torch DataLoader(batch_sampler=...) protocol -------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that iterating the sampler draws (seeded by ``seed`` and ``epoch``)."""
        self._epoch = int(epoch)

    def generator_for(self, epoch: int) -> torch.Generator:
        """The generator :meth:`__iter__` uses for ``epoch``: seeded from ``(seed, epoch)``."""
        seed = int(np.random.SeedSequence([self.seed, int(epoch)]).generate_state(1)[0])
        return torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.batches(self.generator_for(self._epoch)):
            yield list(zip(batch.visible.tolist(), batch.infrared.tolist(), strict=True))


def _as_ids(ids: Sequence[int] | np.ndarray | Tensor, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(ids) if not isinstance(ids, Tensor) else ids)
    if t.ndim != 1:
        raise ValueError(f"{name} must be one identity per image (1-D); got shape {tuple(t.shape)}")
    if t.numel() and (t.dtype.is_floating_point or t.dtype == torch.bool):
        raise ValueError(f"{name} must hold integer identities; got dtype {t.dtype}")
    return t.to(torch.int64)


def _positions(ids: Tensor) -> dict[int, Tensor]:
    """identity -> the (sorted) positions of its images."""
    if ids.numel() == 0:
        return {}
    order = torch.argsort(ids, stable=True)
    uniq, counts = torch.unique_consecutive(ids[order], return_counts=True)
    parts = order.split(counts.tolist())
    return {int(u): part for u, part in zip(uniq.tolist(), parts, strict=True)}
