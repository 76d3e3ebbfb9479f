"""What the MVC networks (``multiview-ib``, ``mvnncor``) share: argument checks, the view
count, and when the objective's logits come through detached parameters."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MvcNetwork(nn.Module):
    name = ""

    def __init__(
        self,
        view_dims: Sequence[int],
        num_classes: int,
        hidden: Sequence[int],
        distill_through_heads: bool,
    ) -> None:
        super().__init__()
        dims = [int(d) for d in view_dims]
        if not dims or min(dims) < 1:
            raise ValueError(f"{self.name}: view_dims must be positive ints; got {list(view_dims)}")
        if not hidden:
            raise ValueError(f"{self.name}: hidden must name at least one layer width")
        if num_classes < 2:
            raise ValueError(f"{self.name}: num_classes must be >= 2; got {num_classes}")
        self.view_dims, self.num_classes = dims, int(num_classes)
        self.distill_through_heads = bool(distill_through_heads)

    @property
    def n_views(self) -> int:
        return len(self.view_dims)

    def split_streams(self, views: Sequence[Tensor]) -> bool:
        """Check the view count; True when the objective must see detached heads and fusion."""
        if len(views) != self.n_views:
            raise ValueError(f"{self.name}: got {len(views)} views; built for {self.n_views}")
        return not self.distill_through_heads and torch.is_grad_enabled()
