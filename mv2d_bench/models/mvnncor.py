"""MvNNcor (Xu et al., AAAI 2020) with a Gaussian bottleneck per view: the paper's MVC baseline.

The network, as in the authors' ``models/network_MvNNcor.py`` (github.com/xujinglin/MvNNcor):

* **View encoders** E_theta: per view an MLP ``d_i -> 512 -> 256`` (Linear, BatchNorm, ReLU,
  Dropout, Linear, BatchNorm, ReLU); its output is the observation v_i.
* **Relation module**: for every pair of views (k, j) an interaction of their features; view k's
  relation features are joined with its own features and classified per view, and the per-view
  predictions are combined into one. MvNNcor forms the outer product ``f_k f_j^T`` and applies a
  linear map (then BN and ReLU) to its flattening, i.e. a bilinear map ``W[o, a, b] f_k[a]
  f_j[b]`` with d^2 x out weights (10^7 for d = 256). :class:`RelationFuse` keeps the bilinear
  form with a rank-r factorisation ``W[o, a, b] = U[o, a] V[o, b]`` (``U f_k * V f_j``, then
  ReLU) and averages it over the other present views instead of concatenating a fixed number
  of them, so it fuses ANY subset of views (what leave-one-out fusion needs); the pair
  relations are computed once per batch, not once per subset. View k is classified from its own
  features plus its relations; the
  per-view logits are combined with learnt positive view weights (softmax), which stand in for
  MvNNcor's loss-driven view weights ``w_v ~ L_v^(1/(1-gamma))``.
* **Bottleneck** (MV2D): v_i -> z_i by :class:`GaussianBottleneck`; heads on v (P_vi) and on z
  (P_zi); the relation fusion runs on z (on v when the bottleneck is switched off).

:class:`MvNNcor` returns :class:`~mv2d_bench.views.ViewOutputs`. It computes the leave-one-out
logits only when asked (``"loo_logits" in needs``), in the same single batched fusion call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mv2d_bench.models.bottleneck import GaussianBottleneck
from mv2d_bench.models.fusion import LeaveOneOutFusion
from mv2d_bench.models.heads import ViewHeads
from mv2d_bench.views import ViewOutputs


class FastDropout(nn.Module):
    """Inverted dropout (as ``nn.Dropout``): zero each element with probability ``p`` while
    training and scale the rest by 1 / (1 - p); identity in evaluation mode.

    The keep-mask is drawn as ``rand >= p`` (one uniform per element): the same Bernoulli(1 - p)
    distribution as ``nn.Dropout``, about 3x faster on CPUs where ``bernoulli_`` is scalar code.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1); got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def view_encoder(in_dim: int, hidden: Sequence[int], dropout: float) -> nn.Sequential:
    """MvNNcor's per-view MLP: Linear-BN-ReLU, then [Dropout-Linear-BN-ReLU] per further layer."""
    layers: list[nn.Module] = []
    prev = in_dim
    for i, width in enumerate(hidden):
        if i > 0 and dropout > 0:
            layers.append(FastDropout(dropout))
        layers += [nn.Linear(prev, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        prev = width
    return nn.Sequential(*layers)


class RelationFuse(nn.Module):
    """MvNNcor's relation module and classifier, as a ``fuse`` for :class:`LeaveOneOutFusion`.

    ``forward(reps (K, B, n, d), weights (K, B, n)) -> logits (K, B, C)``. With f = Dropout(reps),
    for each subset (a row of ``weights``) and each view k in it::

        rel_kj  = ReLU(U f_k * V f_j)                       (a relation per ordered view pair)
        logit_k = S(ReLU(A f_k)) + R mean_{j in subset, j != k} rel_kj   (R term 0 if k alone)
        fused   = sum_k weight_k a_k logit_k / sum_k weight_k a_k,   a = softmax(view_logits)

    ``U f_k * V f_j`` is a rank-r bilinear map of the pair, MvNNcor's ``W vec(f_k f_j^T)`` with
    W factorised (then ReLU, as MvNNcor); ``S(ReLU(A .))`` classifies the view's own features
    and ``R`` its relations. A view with weight 0 enters neither the relations nor the sum. The
    pair relations do not depend on the subset: they are computed once per batch and only
    their weighted sums (a batched matmul) are per subset. ``reps`` may be (1, B, n, d),
    broadcast against the K subsets of ``weights`` (``broadcast_reps``: how LeaveOneOutFusion
    then passes it), so the n + 1 leave-one-out subsets cost little more than one.
    """

    broadcast_reps = True

    def __init__(
        self,
        n_views: int,
        dim: int,
        num_classes: int,
        rank: int = 16,
        hidden: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.n_views, self.dim = n_views, dim
        self.drop = FastDropout(dropout)
        self.u = nn.Linear(dim, rank, bias=False)
        self.v = nn.Linear(dim, rank, bias=False)
        self.a = nn.Linear(dim, hidden)
        self.s = nn.Linear(hidden, num_classes)
        self.r = nn.Linear(rank, num_classes, bias=False)
        self.view_logits = nn.Parameter(torch.zeros(n_views))

    def forward(self, reps: Tensor, weights: Tensor) -> Tensor:
        if reps.dim() != 4 or reps.shape[2] != self.n_views or reps.shape[3] != self.dim:
            raise ValueError(
                f"RelationFuse: reps must be (K or 1, B, {self.n_views}, {self.dim}); "
                f"got {tuple(reps.shape)}"
            )
        f = self.drop(reps)  # (1 or K, B, n, d)
        w = weights.to(reps.dtype)  # (K, B, n)
        n = w.shape[-1]
        alpha = torch.softmax(self.view_logits, dim=0) * w
        alpha = alpha / alpha.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(alpha.dtype).tiny)
        count = (w.sum(dim=-1, keepdim=True) - w).clamp(min=1.0)  # other present views
        own = self.s(torch.relu(self.a(f)))  # (1 or K, B, n, C)
        # pair relations ReLU(U f_k * V f_j): they do not depend on the subset
        pairs = torch.relu(self.u(f).unsqueeze(3) * self.v(f).unsqueeze(2))  # (1|K, B, n, n, r)
        # each subset: view k's relations are the mean over its present j != k, weighted a_k;
        # R is linear, so the weighted sum over (k, j) happens before R.
        off = 1.0 - torch.eye(n, dtype=w.dtype, device=w.device)
        coef = (alpha / count).unsqueeze(-1) * w.unsqueeze(-2) * off  # (K, B, n, n)
        if f.shape[0] == 1:  # broadcast reps: contract per item, one batched matmul
            rel = torch.einsum("kbij,bijr->kbr", coef, pairs[0])
            own = torch.einsum("kbn,bnc->kbc", alpha, own[0])
        else:
            rel = torch.einsum("kbij,kbijr->kbr", coef, pairs)
            own = torch.einsum("kbn,kbnc->kbc", alpha, own)
        return own + self.r(rel)


class MvNNcor(nn.Module):
    """MvNNcor with optional Gaussian bottlenecks; ``forward(views, needs) -> ViewOutputs``.

    Switches (the ablation rows of the paper's Table 7 pair these with an objective):
    ``bottleneck=False`` - no bottleneck: z_i = v_i, P_zi = P_vi, fusion on v, no mean/std;
    ``bottleneck=True`` - v_i -> z_i (``z_dim``, the Figure 10 sweep) with heads on v and z.
    """

    def __init__(
        self,
        view_dims: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (512, 256),
        dropout: float = 0.5,
        bottleneck: bool = True,
        z_dim: int = 128,
        bottleneck_hidden: int = 128,
        min_std: float = 1e-4,
        relation_rank: int = 16,
        classifier_hidden: int = 128,
        fusion_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        view_dims = [int(d) for d in view_dims]
        if not view_dims or min(view_dims) < 1:
            raise ValueError(f"MvNNcor: view_dims must be positive ints; got {view_dims}")
        if not hidden:
            raise ValueError("MvNNcor: hidden must name at least one layer width")
        self.view_dims, self.num_classes = view_dims, int(num_classes)
        self.use_bottleneck = bool(bottleneck)
        obs_dim = int(hidden[-1])
        rep_dim = int(z_dim) if bottleneck else obs_dim
        n = len(view_dims)
        self.encoders = nn.ModuleList(view_encoder(d, hidden, dropout) for d in view_dims)
        self.obs_heads = ViewHeads([obs_dim] * n, num_classes)
        if bottleneck:
            self.bottlenecks = nn.ModuleList(
                GaussianBottleneck(obs_dim, rep_dim, bottleneck_hidden, min_std) for _ in range(n)
            )
            self.rep_heads = ViewHeads([rep_dim] * n, num_classes)
        self.fusion = LeaveOneOutFusion(
            RelationFuse(n, rep_dim, num_classes, relation_rank, classifier_hidden, fusion_dropout)
        )

    @property
    def n_views(self) -> int:
        return len(self.view_dims)

    def forward(
        self,
        views: Sequence[Tensor],
        needs: frozenset[str] | set[str] = frozenset(),
        present: Tensor | None = None,
    ) -> ViewOutputs:
        if len(views) != self.n_views:
            raise ValueError(f"MvNNcor: got {len(views)} views; built for {self.n_views}")
        obs = [enc(x) for enc, x in zip(self.encoders, views, strict=True)]
        obs_logits = self.obs_heads(obs)
        out = ViewOutputs(obs=obs, obs_logits=obs_logits)
        if self.use_bottleneck:
            zs = [b(v) for b, v in zip(self.bottlenecks, obs, strict=True)]
            out.rep = [z for z, _, _ in zs]
            out.rep_mean = [m for _, m, _ in zs]
            out.rep_std = [s for _, _, s in zs]
            out.rep_logits = self.rep_heads(out.rep)
        else:
            out.rep, out.rep_logits = obs, obs_logits
        loo = "loo_logits" in needs and self.n_views >= 2
        out.fused_logits, out.loo_logits = self.fusion(out.rep, present=present, loo=loo)
        return out
