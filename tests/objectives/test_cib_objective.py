"""CIB: the JSD estimator learns, and one backward pass pushes critic and encoder opposite ways."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mv2d_bench.objectives import create
from mv2d_bench.objectives.cib import CIB, jsd_bound
from mv2d_bench.views import ViewOutputs

LOG4 = 2 * math.log(2)


def pairs(dependent: bool, n: int, gen: torch.Generator, mixing: torch.Tensor):
    v = torch.randn(n, 8, generator=gen)
    if dependent:
        z = torch.tanh(v @ mixing) + 0.1 * torch.randn(n, 4, generator=gen)
    else:
        z = torch.randn(n, 4, generator=gen)
    return v, z


def bound_by_hand(critic, v, z, perm):
    """The JSD bound written out independently of jsd_bound()."""
    t_joint = critic.net(torch.cat([v, z], 1)).squeeze(1)
    t_marg = critic.net(torch.cat([v, z[perm]], 1)).squeeze(1)
    return -F.softplus(-t_joint).mean() - F.softplus(t_marg).mean()


def train_alone(dependent: bool) -> float:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    mixing = torch.randn(8, 4, generator=gen)
    cib = CIB(beta=1.0, obs_dims=[8], rep_dims=[4], hidden=64)
    opt = torch.optim.Adam(cib.parameters(), lr=3e-3)
    for _ in range(300):
        v, z = pairs(dependent, 256, gen, mixing)  # no gradient: only the critic learns
        loss = cib(ViewOutputs(obs=[v], rep=[z]))["cib"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    v, z = pairs(dependent, 2048, gen, mixing)  # held-out pairs
    with torch.no_grad():
        return bound_by_hand(cib.critics[0], v, z, torch.randperm(2048)).item()


@pytest.fixture
def one_thread():
    """300 tiny steps: intra-op threads only add contention on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_estimator_separates_dependent_from_independent_pairs(one_thread):
    dependent, independent = train_alone(True), train_alone(False)
    # sup of the bound is 2 JSD - 2 log 2: about -2 log 2 when independent, higher when not
    assert independent == pytest.approx(-LOG4, abs=0.05)
    assert dependent > independent + 0.8


def one_backward(weight: float = 1.0, beta: float = 0.5):
    torch.manual_seed(3)
    v = torch.randn(32, 6, requires_grad=True)
    z = (v[:, :3].detach() + 0.3 * torch.randn(32, 3)).requires_grad_(True)
    cib = CIB(beta=beta, weight=weight, obs_dims=[6], rep_dims=[3], hidden=32)
    torch.manual_seed(4)
    term = cib(ViewOutputs(obs=[v], rep=[z]))["cib"]
    torch.manual_seed(4)
    perm = torch.randperm(32)  # the permutation the forward drew
    term.backward()
    return cib, v, z, perm, term


def test_term_value_is_weighted_bound_plus_log4():
    cib, v, z, perm, term = one_backward(weight=2.0, beta=0.5)
    with torch.no_grad():
        bound = bound_by_hand(cib.critics[0], v, z, perm)
    assert term.item() == pytest.approx(2.0 * 0.5 * (bound.item() + LOG4), rel=1e-5)


def test_one_backward_critic_raises_and_representation_lowers_the_bound():
    weight, beta = 2.0, 0.5
    cib, v, z, perm, _ = one_backward(weight, beta)
    critic = cib.critics[0]
    params = list(critic.parameters())
    grads = [p.grad.clone() for p in params]

    # the gradients are exactly -dI/dtheta for the critic and weight*beta*dI/d(v, z)
    vv, zz = v.detach().requires_grad_(True), z.detach().requires_grad_(True)
    bound = bound_by_hand(critic, vv, zz, perm)
    d_params = torch.autograd.grad(bound, params, retain_graph=True)
    d_v, d_z = torch.autograd.grad(bound, [vv, zz])
    for g, d in zip(grads, d_params, strict=True):
        torch.testing.assert_close(g, -d)
    torch.testing.assert_close(v.grad, weight * beta * d_v)
    torch.testing.assert_close(z.grad, weight * beta * d_z)

    # what an optimiser does: step along -grad
    with torch.no_grad():
        before = bound_by_hand(critic, v, z, perm).item()
        for p, g in zip(params, grads, strict=True):
            p -= 1e-3 * g
        after_critic = bound_by_hand(critic, v, z, perm).item()
        for p, g in zip(params, grads, strict=True):
            p += 1e-3 * g
        after_rep = bound_by_hand(critic, v - 1e-2 * v.grad, z - 1e-2 * z.grad, perm).item()
    assert after_critic > before + 1e-7
    assert after_rep < before - 1e-7


def test_critic_trains_even_when_beta_is_zero():
    cib, v, z, _, term = one_backward(weight=1.0, beta=0.0)
    assert term.item() == 0.0
    assert v.grad.abs().max().item() == 0.0
    assert max(p.grad.abs().max().item() for p in cib.parameters()) > 0.0


def test_mask_selects_items_and_views_sum():
    torch.manual_seed(5)
    obs = [torch.randn(20, 5), torch.randn(20, 7)]
    rep = [torch.randn(20, 3), torch.randn(20, 2)]
    mask = torch.arange(20) % 3 != 0
    cib = CIB(beta=1.0, obs_dims=[5, 7], rep_dims=[3, 2], hidden=16)
    torch.manual_seed(6)
    got = cib(ViewOutputs(obs=obs, rep=rep, mask=mask))["cib"].item()
    torch.manual_seed(6)
    m = int(mask.sum())
    want = 0.0
    with torch.no_grad():
        for critic, v, z in zip(cib.critics, obs, rep, strict=True):
            want += bound_by_hand(critic, v[mask], z[mask], torch.randperm(m)).item() + LOG4
            assert jsd_bound(critic, v[mask], z[mask], torch.arange(m)).item() == pytest.approx(
                bound_by_hand(critic, v[mask], z[mask], torch.arange(m)).item(), rel=1e-6
            )
    assert got == pytest.approx(want, rel=1e-5)
    # fewer than two valid items: no negatives, no term
    one = torch.zeros(20, dtype=torch.bool)
    one[4] = True
    assert cib(ViewOutputs(obs=obs, rep=rep, mask=one))["cib"].item() == 0.0


def test_critics_built_from_dims_bind_or_first_forward():
    lazy = create("cib")
    assert len(list(lazy.parameters())) == 0
    outputs = ViewOutputs(obs=[torch.randn(8, 5), torch.randn(8, 9)], rep=[torch.randn(8, 3)] * 2)
    lazy(outputs)
    assert lazy.obs_dims == [5, 9] and lazy.rep_dims == [3, 3]
    assert lazy.critics[1].net[0].in_features == 12
    assert lazy.hparams()["obs_dims"] == [5, 9]

    bound = create("cib")
    bound.bind(obs_dims=[5, 9], rep_dims=[3, 3])
    n_params = sum(p.numel() for p in bound.parameters())
    assert n_params == sum(p.numel() for p in lazy.parameters()) > 0
    with pytest.raises(ValueError, match=r"obs_dims=\[5, 9\]"):
        bound(ViewOutputs(obs=[torch.randn(8, 4), torch.randn(8, 9)], rep=outputs.rep))
    with pytest.raises(ValueError, match="already bound"):
        bound.bind(obs_dims=[1, 2], rep_dims=[3, 3])
    with pytest.raises(ValueError, match="both obs_dims and rep_dims"):
        create("cib", obs_dims=[5])
