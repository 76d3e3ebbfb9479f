"""``cib``: the conventional information bottleneck with a neural JSD MI estimator."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from mv2d_bench.objectives.base import Objective
from mv2d_bench.views import ViewOutputs

LOG4 = 2.0 * math.log(2.0)
"""-LOG4 is the JSD bound of a critic that cannot tell joint from marginal pairs (T = 0)."""


class Critic(nn.Module):
    """T(v, z): an MLP on the concatenation of an observation and a representation."""

    def __init__(self, obs_dim: int, rep_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.obs_dim, self.rep_dim = int(obs_dim), int(rep_dim)
        self.net = nn.Sequential(
            nn.Linear(self.obs_dim + self.rep_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, v: Tensor, z: Tensor) -> Tensor:
        return self.net(torch.cat([v, z], dim=-1)).squeeze(-1)


def jsd_bound(critic: nn.Module, v: Tensor, z: Tensor, perm: Tensor, params=None) -> Tensor:
    """E_joint[-softplus(-T(v, z))] - E_marginal[softplus(T(v, z'))], z' = z[perm].

    The Jensen-Shannon lower bound (f-GAN / Deep InfoMax form): its supremum over critics is
    2 * JSD(p(v, z) || p(v) p(z)) - 2 log 2. Negatives pair each v with another item's z.
    ``params`` optionally replaces the critic's parameters (see :func:`torch.func.functional_call`).
    """

    def t(a: Tensor, b: Tensor) -> Tensor:
        return critic(a, b) if params is None else functional_call(critic, params, (a, b))

    return (-F.softplus(-t(v, z))).mean() - F.softplus(t(v, z[perm])).mean()


class CIB(Objective):
    """Conventional information bottleneck: penalise an estimate of I(v_i; z_i)::

        cib = weight * beta * sum_i I_hat(v_i; z_i),
        I_hat = E_joint[-softplus(-T_i(v, z))] - E_marginal[softplus(T_i(v, z'))] + 2 log 2

    I_hat is the Jensen-Shannon lower bound of a per-view critic T_i (an MLP on [v, z]), with
    negatives z' made by a random permutation of z over the valid items of the batch; the constant
    2 log 2 only makes a critic that cannot tell the pairs apart score 0 (no gradient changes).

    Min-max in one backward pass: the returned term has the value weight * beta * sum_i I_hat,
    its gradient with respect to the observations v and the representations z is that of
    weight * beta * I_hat (the encoder and bottleneck are pushed to *lower* the bound; v is not
    detached), and its gradient with respect to the critics' parameters is that of -I_hat (the
    optimiser that minimises the term *raises* the bound, at a rate independent of beta). It is
    made of two critic evaluations: one with detached critic parameters on (v, z), one with the
    live critic on (v.detach(), z.detach()) entering as ``-(b - b.detach())`` (value 0).

    The critics are parameters of this module and are trained with the rest of the model. Their
    input widths come from ``obs_dims``/``rep_dims`` (one int per view), from :meth:`bind`, or,
    when neither was given, from the tensors of the first forward pass; in that last case the
    harness must run one forward pass before it builds the optimiser (and before it loads a
    checkpoint), or the critics are not trained. ``beta`` is the paper's coefficient (default
    1e-3); ``weight`` is the overall multiplier every objective has.
    """

    name = "cib"
    needs = frozenset({"obs", "rep"})
    formula = "beta * sum_i I_JSD(v_i; z_i)   (neural JSD estimator, shuffled negatives; min-max)"

    def __init__(
        self,
        beta: float = 1e-3,
        weight: float = 1.0,
        hidden: int = 128,
        obs_dims: Sequence[int] | None = None,
        rep_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__(weight=weight)
        if beta < 0:
            raise ValueError(f"beta must be >= 0; got {beta}")
        self.beta = float(beta)
        self.hidden = int(hidden)
        self.obs_dims: list[int] | None = None
        self.rep_dims: list[int] | None = None
        self.critics = nn.ModuleList()
        if (obs_dims is None) != (rep_dims is None):
            raise ValueError("cib: give both obs_dims and rep_dims (one int per view) or neither")
        if obs_dims is not None:
            self.bind(obs_dims=list(obs_dims), rep_dims=list(rep_dims))

    def bind(self, *, obs_dims: list[int], rep_dims: list[int]) -> None:
        """Build one critic per view for these observation/representation widths."""
        obs_dims, rep_dims = [int(d) for d in obs_dims], [int(d) for d in rep_dims]
        if len(obs_dims) != len(rep_dims) or not obs_dims:
            raise ValueError(
                f"cib: obs_dims {obs_dims} and rep_dims {rep_dims} must be non-empty and have "
                "one entry per view"
            )
        if self.obs_dims is not None:
            if (obs_dims, rep_dims) != (self.obs_dims, self.rep_dims):
                raise ValueError(
                    f"cib is already bound to obs_dims={self.obs_dims}, rep_dims={self.rep_dims}; "
                    f"got obs_dims={obs_dims}, rep_dims={rep_dims}"
                )
            return
        self.obs_dims, self.rep_dims = obs_dims, rep_dims
        for obs_dim, rep_dim in zip(obs_dims, rep_dims, strict=True):
            self.critics.append(Critic(obs_dim, rep_dim, self.hidden))

    def _ensure_critics(self, outputs: ViewOutputs) -> None:
        obs_dims = [v.shape[-1] for v in outputs.obs]
        rep_dims = [z.shape[-1] for z in outputs.rep]
        if self.obs_dims is None:
            self.bind(obs_dims=obs_dims, rep_dims=rep_dims)
            self.critics.to(outputs.obs[0].device)
        elif (obs_dims, rep_dims) != (self.obs_dims, self.rep_dims):
            raise ValueError(
                f"cib: the critics were built for obs_dims={self.obs_dims}, "
                f"rep_dims={self.rep_dims}; ViewOutputs has obs widths {obs_dims} and rep "
                f"widths {rep_dims}"
            )

    def forward(self, outputs: ViewOutputs) -> dict[str, Tensor]:
        self.check(outputs)
        self._ensure_critics(outputs)
        scale = self.weight * self.beta
        total = outputs.rep[0].new_zeros((), dtype=torch.float32)
        views = zip(self.critics, outputs.obs, outputs.rep, strict=True)
        for i, (critic, v, z) in enumerate(views):
            mask = outputs.view_mask(i)
            if mask is not None:
                m = mask.to(device=v.device, dtype=torch.bool)
                v, z = v[m], z[m]
            if v.shape[0] < 2:  # no negatives can be formed
                continue
            perm = torch.randperm(v.shape[0], device=v.device)
            frozen = {k: p.detach() for k, p in critic.named_parameters()}
            enc = jsd_bound(critic, v, z, perm, params=frozen) + LOG4
            est = jsd_bound(critic, v.detach(), z.detach(), perm)
            total = total + scale * enc.float() - (est - est.detach()).float()
        return {"cib": total}

    def terms(self, outputs: ViewOutputs) -> dict[str, Tensor]:  # pragma: no cover - see forward
        raise NotImplementedError("CIB overrides forward: its critic part is not scaled by weight")
