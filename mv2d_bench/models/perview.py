"""Per-view layers of n views computed together (one batched kernel instead of n small ones).

A multi-view network applies the same kind of layer to every view: an MLP per view, a BatchNorm
per view, a bottleneck and a classification head per view. With n = 6 views and batch 64, each
of those is a tiny kernel whose launch and autograd bookkeeping cost more than its arithmetic.
The modules here hold the n views' parameters stacked and compute all views at once:

* :class:`ViewLinear` - n linear maps of one shape, ``(n, B, in) -> (n, B, out)`` with one
  ``baddbmm`` (weights ``(n, in, out)``, biases ``(n, 1, out)``);
* :class:`ViewInputLinear` - the first layer, whose input widths differ per view: n
  ``F.linear`` calls whose outputs are written side by side, ``-> (B, n * out)``;
* :class:`ViewBatchNorm` - a BatchNorm1d per view and channel: one ``BatchNorm1d(n * C)`` on the
  ``(B, n * C)`` layout, which is exactly n independent ``BatchNorm1d(C)`` (batch statistics,
  running statistics and affine parameters are per channel);
* :class:`ViewEncoders` - MvNNcor's per-view MLP ``d_i -> h_1 -> ... -> h_L`` (Linear, BN, ReLU;
  dropout before every Linear but the first) on all views, ``list of (B, d_i) -> (B, n, h_L)``;
* :class:`ViewGaussianBottleneck` - the Gaussian bottleneck E_phi of every view,
  ``(n, B, d) -> z, mean, std`` each ``(n, B, z_dim)``.

Initialisation draws each view's parameters from the same distributions as the per-view
``torch.nn`` modules (``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias;
``init_std`` switches the weights to N(0, init_std), MvNNcor's ``weights_init_normal``).
``to_modules()`` / ``load_modules()`` convert to and from the per-view ``nn`` modules, which is how
the tests check that the batched layers compute exactly what the per-view modules compute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mv2d_bench.models.dropout import FastDropout


def _uniform_(t: Tensor, fan_in: int) -> None:
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    with torch.no_grad():
        t.uniform_(-bound, bound)


def uniform_parameter(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
    """A parameter drawn from nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    p = nn.Parameter(torch.empty(shape))
    _uniform_(p, fan_in)
    return p


class ViewLinear(nn.Module):
    """n linear maps ``in -> out``: ``forward(x (n, B, in)) -> (n, B, out)`` in one baddbmm.

    ``x`` may be any strided (n, B, in) view (e.g. the transpose of a (B, n, in) tensor).
    """

    def __init__(
        self, n_views: int, in_dim: int, out_dim: int, bias: bool = True, init_std: float = 0.0
    ) -> None:
        super().__init__()
        if n_views < 1 or in_dim < 1 or out_dim < 1:
            raise ValueError(
                f"ViewLinear: expected positive sizes; got n={n_views}, in={in_dim}, out={out_dim}"
            )
        self.n_views, self.in_dim, self.out_dim = n_views, in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(n_views, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(n_views, 1, out_dim)) if bias else None
        for v in range(n_views):  # per view, as n nn.Linear(in, out) would be initialised
            if init_std > 0:
                with torch.no_grad():
                    self.weight[v].normal_(0.0, init_std)
            else:
                _uniform_(self.weight[v], in_dim)
            if self.bias is not None:
                _uniform_(self.bias[v], in_dim)

    def forward(self, x: Tensor, frozen: bool = False) -> Tensor:
        w = self.weight.detach() if frozen else self.weight
        if self.bias is None:
            return torch.bmm(x, w)
        b = self.bias.detach() if frozen else self.bias
        return torch.baddbmm(b, x, w)

    def to_modules(self) -> list[nn.Linear]:
        out = []
        for v in range(self.n_views):
            lin = nn.Linear(self.in_dim, self.out_dim, bias=self.bias is not None)
            with torch.no_grad():
                lin.weight.copy_(self.weight[v].t())
                if self.bias is not None:
                    lin.bias.copy_(self.bias[v, 0])
            out.append(lin)
        return out

    def load_modules(self, modules: Sequence[nn.Linear]) -> None:
        with torch.no_grad():
            for v, lin in enumerate(modules):
                self.weight[v].copy_(lin.weight.t())
                if self.bias is not None:
                    self.bias[v, 0].copy_(lin.bias)

    def extra_repr(self) -> str:
        return f"n_views={self.n_views}, in={self.in_dim}, out={self.out_dim}"


class ViewInputLinear(nn.Module):
    """The first per-view layer ``d_i -> out`` (input widths differ): ``-> (B, n * out)``."""

    def __init__(self, in_dims: Sequence[int], out_dim: int, init_std: float = 0.0) -> None:
        super().__init__()
        self.in_dims, self.out_dim = [int(d) for d in in_dims], int(out_dim)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d in self.in_dims:
            w = torch.empty(out_dim, d)
            if init_std > 0:
                w.normal_(0.0, init_std)
            else:
                _uniform_(w, d)
            b = torch.empty(out_dim)
            _uniform_(b, d)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, views: Sequence[Tensor]) -> Tensor:
        outs = [F.linear(x, w, b) for x, w, b in zip(views, self.weights, self.biases, strict=True)]
        return torch.cat(outs, dim=1)

    def to_modules(self) -> list[nn.Linear]:
        out = []
        for w, b in zip(self.weights, self.biases, strict=True):
            lin = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(b)
            out.append(lin)
        return out

    def load_modules(self, modules: Sequence[nn.Linear]) -> None:
        with torch.no_grad():
            for w, b, lin in zip(self.weights, self.biases, modules, strict=True):
                w.copy_(lin.weight)
                b.copy_(lin.bias)


class ViewBatchNorm(nn.BatchNorm1d):
    """A BatchNorm1d(C) per view as one BatchNorm1d(n * C) on the (B, n * C) layout."""

    def __init__(self, n_views: int, channels: int, **kwargs) -> None:
        super().__init__(n_views * channels, **kwargs)
        self.n_views, self.channels = n_views, channels

    def to_modules(self) -> list[nn.BatchNorm1d]:
        out = []
        for v in range(self.n_views):
            bn = nn.BatchNorm1d(self.channels, eps=self.eps, momentum=self.momentum)
            s = slice(v * self.channels, (v + 1) * self.channels)
            with torch.no_grad():
                bn.weight.copy_(self.weight[s])
                bn.bias.copy_(self.bias[s])
                bn.running_mean.copy_(self.running_mean[s])
                bn.running_var.copy_(self.running_var[s])
            out.append(bn)
        return out


class ViewEncoders(nn.Module):
    """MvNNcor's per-view MLP for every view: ``list of (B, d_i) -> (B, n, hidden[-1])``.

    Per view: ``Linear(d_i, h_1) BN ReLU [Dropout Linear(h_k, h_k+1) BN ReLU]...`` - dropout
    before each Linear but the first, BatchNorm after each Linear (MvNNcor's
    ``models/network_MvNNcor.py`` with ``hidden = [2 * fea_out, fea_out]``).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        hidden: Sequence[int],
        dropout: float = 0.5,
        init_std: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("ViewEncoders: hidden must name at least one layer width")
        self.in_dims = [int(d) for d in in_dims]
        self.hidden = [int(h) for h in hidden]
        n = len(self.in_dims)
        self.first = ViewInputLinear(self.in_dims, self.hidden[0], init_std)
        self.norms = nn.ModuleList([ViewBatchNorm(n, self.hidden[0])])
        self.layers = nn.ModuleList()
        for a, b in zip(self.hidden[:-1], self.hidden[1:], strict=True):
            self.layers.append(ViewLinear(n, a, b, init_std=init_std))
            self.norms.append(ViewBatchNorm(n, b))
        self.drop = FastDropout(dropout)

    @property
    def n_views(self) -> int:
        return len(self.in_dims)

    def forward(self, views: Sequence[Tensor]) -> Tensor:
        n, batch = self.n_views, views[0].shape[0]
        h = torch.relu(self.norms[0](self.first(views)))  # (B, n * h_1)
        for layer, norm in zip(self.layers, self.norms[1:], strict=True):
            h = self.drop(h).view(batch, n, layer.in_dim).transpose(0, 1)  # (n, B, in)
            h = layer(h).transpose(0, 1).reshape(batch, n * layer.out_dim)
            h = torch.relu(norm(h))
        return h.view(batch, n, self.hidden[-1])


class ViewGaussianBottleneck(nn.Module):
    """The Gaussian bottleneck of every view: ``forward(v (n, B, d)) -> (z, mean, std)``.

    Per view (as :class:`~mv2d_bench.models.bottleneck.GaussianBottleneck`): an MLP
    ``d -> hidden -> 2 z_dim`` (ReLU; a single Linear when ``hidden`` is 0), the first half the
    mean, ``softplus`` of the second plus ``min_std`` the standard deviation; z is
    ``mean + std * eps`` while training and the mean in evaluation mode. The softplus is torch's
    own (``F.softplus``, 3x faster forward + backward here than the exp/log form; it is linear
    above 20, where the two differ by less than 1e-8).
    """

    def __init__(
        self, n_views: int, in_dim: int, z_dim: int, hidden: int = 0, min_std: float = 1e-4
    ) -> None:
        super().__init__()
        if in_dim < 1 or z_dim < 1 or hidden < 0 or min_std < 0:
            raise ValueError(
                "ViewGaussianBottleneck: expected in_dim, z_dim >= 1, hidden >= 0, min_std >= 0; "
                f"got {in_dim}, {z_dim}, {hidden}, {min_std}"
            )
        self.z_dim, self.min_std = int(z_dim), float(min_std)
        self.hidden = ViewLinear(n_views, in_dim, hidden) if hidden else None
        self.out = ViewLinear(n_views, hidden or in_dim, 2 * z_dim)

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = torch.relu(self.hidden(v)) if self.hidden is not None else v
        mean, raw = self.out(h).chunk(2, dim=-1)
        std = F.softplus(raw) + self.min_std
        z = mean + std * torch.randn_like(std) if self.training else mean
        return z, mean, std
