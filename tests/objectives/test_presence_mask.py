"""The per-view presence mask (ViewOutputs.present): objectives combine it with the validity mask
per view, so points a camera does not see contribute nothing to the camera's terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mv2d_bench import objectives
from mv2d_bench.views import ViewOutputs

C, D = 6, 4
OBJECTIVES = ["vib", "cib", "vsd", "vcd", "vmd", "mv2d"]


def two_view_outputs(items: int, seed: int = 0) -> ViewOutputs:
    """View 0 = LiDAR (sees every point), view 1 = camera (sees about half of them)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    present = torch.ones(items, 2, dtype=torch.bool)
    present[:, 1] = torch.rand(items, generator=g) < 0.5
    return ViewOutputs(
        obs=[r(items, 5), r(items, 5)],
        obs_logits=[r(items, C), r(items, C)],
        rep=[r(items, D), r(items, D)],
        rep_mean=[r(items, D), r(items, D)],
        rep_std=[torch.rand(items, D, generator=g) + 0.1 for _ in range(2)],
        rep_logits=[r(items, C), r(items, C)],
        fused_logits=r(items, C),
        loo_logits=[r(items, C), r(items, C)],
        target=torch.zeros(items, dtype=torch.long),
        mask=torch.rand(items, generator=g) > 0.2,
        present=present,
    )


def evaluate(name: str, out: ViewOutputs) -> dict[str, float]:
    torch.manual_seed(0)
    obj = objectives.create(name)
    if name == "cib":
        obj.bind(obs_dims=[5, 5], rep_dims=[D, D])
    torch.manual_seed(1)  # CIB's negatives
    return {k: float(v.detach()) for k, v in obj(out).items()}


def kl_rows(p_logits, q_logits):
    """KL(p || q) per row through F.kl_div with log targets (an independent formula)."""
    log_p, log_q = F.log_softmax(p_logits, -1), F.log_softmax(q_logits, -1)
    return F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_all_present_equals_no_presence(name):
    out = two_view_outputs(64)
    out.present = torch.ones(64, 2, dtype=torch.bool)
    with_presence = evaluate(name, out)
    out.present = None
    without = evaluate(name, out)
    assert with_presence.keys() == without.keys()
    for k in without:
        assert with_presence[k] == pytest.approx(without[k], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_unseen_points_do_not_change_camera_terms(name):
    """Rewriting every camera-side value of the points the camera does not see changes nothing."""
    out = two_view_outputs(80, seed=3)
    before = evaluate(name, out)
    unseen = ~out.present[:, 1]
    g = torch.Generator().manual_seed(9)
    for field in ("obs", "obs_logits", "rep", "rep_mean", "rep_logits", "loo_logits"):
        t = getattr(out, field)[1].clone()
        t[unseen] = 50.0 * torch.randn(int(unseen.sum()), t.shape[1], generator=g)
        getattr(out, field)[1] = t
    std = out.rep_std[1].clone()
    std[unseen] = 7.0
    out.rep_std[1] = std
    fused = out.fused_logits.clone()  # P_Z of an unseen point is the LiDAR-only prediction:
    loo0 = out.loo_logits[0].clone()  # only the LiDAR-side consistency term could read it
    fused[unseen] = 30.0 * torch.randn(int(unseen.sum()), C, generator=g)
    loo0[unseen] = -fused[unseen]
    out.fused_logits, out.loo_logits[0] = fused, loo0
    after = evaluate(name, out)
    for k in before:
        assert after[k] == pytest.approx(before[k], rel=1e-6, abs=1e-7), k


@pytest.mark.parametrize("name", ["vcd", "vmd"])
def test_cross_view_objective_over_unseen_points_is_zero(name):
    out = two_view_outputs(40, seed=5)
    out.present[:, 1] = False
    assert evaluate(name, out)[name] == 0.0


def test_mv2d_terms_with_presence_match_an_independent_computation():
    out = two_view_outputs(120, seed=7)
    valid, cam = out.mask, out.present[:, 1]
    terms = evaluate("mv2d", out)
    lidar_suff = kl_rows(out.obs_logits[0], out.rep_logits[0])[valid].mean()
    cam_suff = kl_rows(out.obs_logits[1], out.rep_logits[1])[valid & cam].mean()
    both = valid & cam  # "all views but i" needs another view: both must see the point
    cons = sum(kl_rows(out.fused_logits, out.loo_logits[i])[both].mean() for i in range(2))
    assert terms["sufficiency"] == pytest.approx(float(lidar_suff + cam_suff), rel=1e-5)
    assert terms["consistency"] == pytest.approx(float(cons), rel=1e-5)
    # No camera anywhere: the LiDAR sufficiency term is all that is left.
    out.present[:, 1] = False
    terms = evaluate("mv2d", out)
    assert terms["sufficiency"] == pytest.approx(float(lidar_suff), rel=1e-5)
    assert terms["consistency"] == 0.0


def test_vcd_with_presence_matches_an_independent_computation():
    out = two_view_outputs(100, seed=11)
    both = out.mask & out.present[:, 1]
    expected = (
        kl_rows(out.obs_logits[1], out.rep_logits[0])[both].mean()
        + kl_rows(out.obs_logits[0], out.rep_logits[1])[both].mean()
    )
    assert evaluate("vcd", out)["vcd"] == pytest.approx(float(expected), rel=1e-5)


def test_vib_counts_each_view_over_its_own_points():
    out = two_view_outputs(90, seed=13)

    def kl_std_normal(mu, std):
        return 0.5 * (mu**2 + std**2 - 1 - torch.log(std**2)).sum(-1)

    lidar = kl_std_normal(out.rep_mean[0], out.rep_std[0])[out.mask].mean()
    cam = kl_std_normal(out.rep_mean[1], out.rep_std[1])[out.mask & out.present[:, 1]].mean()
    assert evaluate("vib", out)["vib"] == pytest.approx(1e-3 * float(lidar + cam), rel=1e-5)


def test_view_mask_rejects_a_bad_presence_shape():
    out = two_view_outputs(10)
    out.present = torch.ones(10, dtype=torch.bool)
    with pytest.raises(ValueError, match="present must be bool"):
        out.view_mask(1)
    out.present = torch.ones(9, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="present has 9 items"):
        out.view_mask(0)
