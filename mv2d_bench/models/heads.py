"""Classification heads: one linear classifier per view (p(y | v_i) and p(y | z_i))."""

from __future__ import annotations

from torch import Tensor, nn


class ViewHeads(nn.Module):
    """``forward(list of (B, d)) -> list of (B, C)``: a separate linear head per view."""

    def __init__(self, dims: list[int], num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"ViewHeads: num_classes must be >= 2; got {num_classes}")
        self.heads = nn.ModuleList(nn.Linear(d, num_classes) for d in dims)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        if len(feats) != len(self.heads):
            raise ValueError(f"ViewHeads: got {len(feats)} views; built for {len(self.heads)}")
        return [head(x) for head, x in zip(self.heads, feats, strict=True)]
