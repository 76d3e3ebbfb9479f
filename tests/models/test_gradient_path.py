"""model.distill_through_heads: which parameters get gradient from each loss term.

Default (False, the paper's Eq. 9): MV2D's sufficiency and consistency terms train the encoders
and bottlenecks only - the heads and the fusion see them through detached parameters - while the
task's cross-entropies train everything. True: the distillation terms train the heads and the
fusion too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mv2d_bench import objectives
from mv2d_bench.models.multiview_ib import MultiViewIB
from mv2d_bench.models.mvnncor import MvNNcor

DIMS = [5, 7, 3]


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    out = {}
    for part in ("encoders", "bottlenecks", "obs_heads", "rep_heads", "fusion"):
        mod = getattr(model, part, None)
        if mod is None:
            continue
        out[part] = any(p.grad is not None and p.grad.abs().max() > 0 for p in mod.parameters())
    return out


def _terms(model):
    torch.manual_seed(0)
    views = [torch.randn(12, d) for d in DIMS]
    y = torch.randint(0, 3, (12,))
    mv2d = objectives.create("mv2d")
    out = model.train()(views, needs=mv2d.needs)
    out.target = y
    terms = mv2d(out)
    terms["ce_fused"] = F.cross_entropy(out.task_fused_logits, y)
    terms["ce_rep"] = F.cross_entropy(out.task_rep_logits.reshape(-1, 3), y.repeat(3))
    return terms


@pytest.mark.parametrize("fusion", ["relation-full", "relation-lowrank", "concat", "mean"])
def test_distillation_reaches_only_encoders_and_bottlenecks_by_default(fusion):
    torch.manual_seed(0)
    model = MultiViewIB(DIMS, 3, hidden=[8, 6], z_dim=4, bottleneck_hidden=5, fusion=fusion,
                        classifier_hidden=5, dropout=0.0, fusion_dropout=0.0)  # fmt: skip
    terms = _terms(model)
    none = dict(obs_heads=False, rep_heads=False, fusion=False)
    assert _grads(model, terms["sufficiency"]) == dict(encoders=True, bottlenecks=True, **none)
    assert _grads(model, terms["consistency"]) == dict(encoders=True, bottlenecks=True, **none)
    assert _grads(model, terms["ce_fused"])["fusion"] is True
    assert _grads(model, terms["ce_rep"])["rep_heads"] is True


@pytest.mark.parametrize("fusion", ["relation-full", "relation-lowrank", "concat", "mean"])
def test_distill_through_heads_true_trains_heads_and_fusion(fusion):
    torch.manual_seed(0)
    model = MultiViewIB(DIMS, 3, hidden=[8, 6], z_dim=4, bottleneck_hidden=5, fusion=fusion,
                        classifier_hidden=5, dropout=0.0, fusion_dropout=0.0,
                        distill_through_heads=True)  # fmt: skip
    terms = _terms(model)
    suff = _grads(model, terms["sufficiency"])
    assert suff == dict(
        encoders=True, bottlenecks=True, obs_heads=False, rep_heads=True, fusion=False
    )  # fmt: skip  (the teacher P_v is detached)
    cons = _grads(model, terms["consistency"])
    assert cons["fusion"] is True and cons["encoders"] and cons["bottlenecks"]


def test_the_switch_does_not_change_values():
    torch.manual_seed(0)
    kw = dict(hidden=[8, 6], z_dim=4, bottleneck_hidden=5, fusion="relation-full",
              classifier_hidden=5, dropout=0.0, fusion_dropout=0.0)  # fmt: skip
    a = MultiViewIB(DIMS, 3, **kw)
    b = MultiViewIB(DIMS, 3, distill_through_heads=True, **kw)
    b.load_state_dict(a.state_dict())
    ta, tb = _terms(a), _terms(b)
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=1e-5, atol=1e-6)


def test_mvnncor_distillation_reaches_only_its_encoders():
    torch.manual_seed(0)
    model = MvNNcor(DIMS, 3, hidden=[8, 6], classifier_hidden=5, dropout=0.0, fusion_dropout=0.0)
    views = [torch.randn(12, d) for d in DIMS]
    out = model.train()(views, needs={"fused_logits", "loo_logits"})
    out.target = torch.randint(0, 3, (12,))
    cons = objectives.create("mv2d")(out)["consistency"]
    assert _grads(model, cons) == {"encoders": True, "fusion": False}
