"""The released MvNNcor (model.name = "mvnncor"): its layer widths and BatchNorm placement, the
N(0, 0.02) initialisation, and the adaptive view weights against their closed form (computed
independently from per-view cross-entropies, and checked to minimise the weighted loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import optimize

from mv2d_bench.models.mvc_fusion.view_weights import LossViewWeights
from mv2d_bench.models.mvnncor import MvNNcor

DIMS = [240, 76, 216, 47, 64, 6]  # Hand


def test_layer_widths_and_batchnorm_placement_are_mvnncors():
    torch.manual_seed(0)
    model = MvNNcor(DIMS, 10)
    enc = model.encoders
    assert [w.shape for w in enc.first.weights] == [(400, d) for d in DIMS]
    assert enc.layers[0].weight.shape == (6, 400, 200)  # 2 fea_out -> fea_out per view
    assert [bn.num_features for bn in enc.norms] == [6 * 400, 6 * 200]  # BN after each Linear
    f = model.fusion
    assert f.psi_weight.shape == (200, 200, 200) and f.psi_bias.shape == (200,)  # 200^2 -> 200
    assert f.cls_weight1.shape == (6, 200, 300)  # Linear(6 * 200, fea_com = 300), split in blocks
    assert f.cls_weight2.shape == (300, 10) and f.cls_bn2.channels == 10  # BN on the logits
    assert f.weighting is model.view_weights
    torch.testing.assert_close(model.view_weights.weight, torch.full((6,), 1 / 6))
    assert model.view_weights.gamma == 6.0


def test_linear_weights_are_normal_0_002_and_the_rest_torch_defaults():
    torch.manual_seed(0)
    model = MvNNcor(DIMS, 10)
    f = model.fusion
    for w in (
        f.psi_weight.detach(),
        model.encoders.layers[0].weight.detach(),
        f.cls_weight1.detach(),
    ):
        assert abs(float(w.mean())) < 1e-3
        assert abs(float(w.std()) - 0.02) < 5e-4
    # biases keep nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BatchNorm keeps (1, 0)
    bias = f.psi_bias.detach()
    assert float(bias.abs().max()) <= 1 / 200
    assert float(bias.abs().max()) > 0.5 / 200
    assert torch.equal(f.cls_bn1.weight, torch.ones(300))
    assert torch.equal(model.encoders.norms[0].bias, torch.zeros(6 * 400))


def test_view_weight_update_is_the_closed_form_of_the_per_view_losses():
    torch.manual_seed(1)
    n, gamma = 4, 6.0
    vw = LossViewWeights(n, gamma).train()
    logits = torch.randn(32, n, 5) * torch.tensor([0.5, 1.0, 2.0, 4.0])[None, :, None]
    y = torch.randint(0, 5, (32,))
    old = vw.weight.clone()
    loss = vw.loss(logits, y)
    ce = torch.stack([F.cross_entropy(logits[:, v], y) for v in range(n)])  # independent
    torch.testing.assert_close(loss, (old**gamma * ce).sum())  # the loss uses the old weights
    up = ce ** (1.0 / (1.0 - gamma))
    torch.testing.assert_close(vw.weight, up / up.sum())
    assert not vw.weight.requires_grad
    # the closed form minimises sum_v w_v^gamma CE_v over the simplex
    c = ce.double().numpy()
    res = optimize.minimize(
        lambda w: float(np.sum(np.abs(w) ** gamma * c)),
        np.full(n, 1.0 / n),
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        bounds=[(0.0, 1.0)] * n,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 500},
    )
    np.testing.assert_allclose(vw.weight.double().numpy(), res.x, atol=2e-3)
    # evaluation mode computes the loss without moving the weights
    vw.eval()
    before = vw.weight.clone()
    vw.loss(logits, y)
    assert torch.equal(vw.weight, before)


def test_fused_prediction_is_the_view_weighted_sum_and_the_weights_move_per_step():
    torch.manual_seed(2)
    model = MvNNcor([5, 7, 3], 4, hidden=[8, 6], classifier_hidden=9).train()
    views = [torch.randn(16, d) for d in (5, 7, 3)]
    y = torch.randint(0, 4, (16,))
    out = model(views)
    w = model.view_weights.weight.clone()
    want = (out.task_view_logits * w[None, :, None]).sum(1)
    torch.testing.assert_close(out.task_fused_logits, want, rtol=1e-5, atol=1e-6)
    loss = model.loss(out, y)
    loss.backward()  # the step's graph keeps the weights it used
    assert not torch.equal(model.view_weights.weight, w)
    assert pytest.approx(float(model.view_weights.weight.sum())) == 1.0


def test_objective_fields_are_filled():
    torch.manual_seed(3)
    model = MvNNcor([5, 7, 3], 4, hidden=[8, 6], classifier_hidden=9).train()
    out = model([torch.randn(16, d) for d in (5, 7, 3)], needs={"fused_logits", "loo_logits"})
    assert out.rep is out.obs and out.rep_logits is out.obs_logits
    assert len(out.loo_logits) == 3 and out.fused_logits.shape == (16, 4)
    torch.testing.assert_close(out.fused_logits, out.task_fused_logits)
