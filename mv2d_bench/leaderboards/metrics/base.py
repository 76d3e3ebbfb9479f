"""The base of every protocol metric: a ``torchmetrics.Metric`` bound to its protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torchmetrics import Metric

from mv2d_bench.leaderboards.metrics.gather import gather_uneven

if TYPE_CHECKING:  # pragma: no cover
    from mv2d_bench.leaderboards.protocols.base import Protocol, Score


class ProtocolMetric(Metric):
    """``update(**arrays)`` per batch, ``compute() -> Score`` (synced across processes).

    Subclasses declare their states in ``__init__`` with ``add_state`` and implement ``update``
    and ``compute``. Inputs may be NumPy arrays or tensors on any device; states follow the
    device the metric is moved to (``metric.to(device)``), never a device of their own choosing.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None  # per metric: the protocol's Metric descriptors say it

    def __init__(self, protocol: Protocol, **kwargs: Any) -> None:
        kwargs.setdefault("dist_sync_fn", gather_uneven)
        super().__init__(**kwargs)
        self.protocol = protocol

    def as_tensor(self, value: Any) -> torch.Tensor:
        """``value`` as a tensor: a tensor stays where it is, anything else goes to the metric's
        device (NumPy arrays keep their dtype)."""
        if isinstance(value, torch.Tensor):
            return value.detach()
        arr = np.asarray(value)
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
        ):
            raise ValueError(f"expected a numeric array, got dtype {arr.dtype}")
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)

    def compute(self) -> Score:  # pragma: no cover - abstract
        raise NotImplementedError
