"""Gathering metric states across processes (the ``dist_sync_fn`` of every protocol metric).

torchmetrics syncs a ``cat`` list state by concatenating each rank's list into one tensor and
all-gathering it. A rank that received no batch (three processes, two batches) has no tensor, and
torchmetrics then stands in a 1-D empty tensor of the metric's float dtype, whose number of
dimensions and dtype differ from the other ranks' ``(n, D)`` features or int64 ids: the default
gather would fail or mix dtypes. :func:`gather_uneven` first gathers every rank's dtype and shape,
gives an empty contribution the dtype and trailing shape of the non-empty ones, pads dimension 0
to the longest, gathers, and trims. The result is the list of every rank's tensor, in rank order.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

MAX_DIMS = 8
DTYPES = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
)


def gather_uneven(tensor: torch.Tensor, group: Any = None) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (rank order), whatever their lengths along dimension 0; an empty
    tensor adopts the dtype and trailing shape of the others (see the module docstring)."""
    group = group if group is not None else dist.group.WORLD
    world = dist.get_world_size(group)
    tensor = tensor.contiguous()
    if tensor.ndim > MAX_DIMS or tensor.dtype not in DTYPES:
        raise ValueError(
            f"metric state: cannot gather a {tensor.ndim}-D {tensor.dtype} tensor across "
            f"processes (at most {MAX_DIMS} dimensions of {', '.join(map(str, DTYPES))})"
        )
    meta = torch.full((3 + MAX_DIMS,), -1, dtype=torch.int64, device=tensor.device)
    meta[0] = tensor.numel()
    meta[1] = DTYPES.index(tensor.dtype)
    meta[2] = tensor.ndim
    meta[3 : 3 + tensor.ndim] = torch.tensor(tensor.shape, dtype=torch.int64)
    metas = [torch.empty_like(meta) for _ in range(world)]
    dist.all_gather(metas, meta, group=group)
    rows = [m.tolist() for m in metas]
    full = [r for r in rows if r[0] > 0]
    if not full:
        return [tensor for _ in range(world)] if tensor.ndim == 0 else [tensor[:0]] * world
    ref = full[0]
    ref_dtype, ref_ndim = DTYPES[ref[1]], ref[2]
    ref_tail = tuple(ref[4 : 3 + ref_ndim])
    for r, row in enumerate(rows):
        if row[0] == 0:
            continue
        tail = tuple(row[4 : 3 + row[2]])
        if DTYPES[row[1]] != ref_dtype or row[2] != ref_ndim or tail != ref_tail:
            raise ValueError(
                f"metric state: rank {r} holds a {DTYPES[row[1]]} tensor of shape "
                f"{tuple(row[3 : 3 + row[2]])}, another rank {ref_dtype} of shape "
                f"{tuple(ref[3 : 3 + ref_ndim])}; every process must give the same keys, dtypes "
                "and sizes"
            )
    if ref_ndim == 0:
        out = [torch.empty((), dtype=ref_dtype, device=tensor.device) for _ in range(world)]
        dist.all_gather(out, tensor.to(ref_dtype), group=group)
        return out
    if tensor.numel() == 0:
        tensor = tensor.reshape((0, *ref_tail)).to(ref_dtype)
    lengths = [row[3] if row[0] > 0 else 0 for row in rows]
    longest = max(lengths)
    padded = torch.zeros((longest, *ref_tail), dtype=ref_dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    out = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(out, padded, group=group)
    return [t[:n] for t, n in zip(out, lengths, strict=True)]
