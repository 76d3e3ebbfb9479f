"""Contract 3: train.optimizer adam | sgd (momentum, nesterov), train.schedule step | cosine
(with the linear warm-up), checked against torch's own optimisers and CosineAnnealingLR; the new
keys at their defaults keep older records matching (run key, leaderboard grouping)."""

from __future__ import annotations

import pytest
import torch

from mv2d_bench.config import ConfigError, canonical_config, load_config, run_key
from mv2d_bench.harness.optim import lr_factor, make_optimizer
from mv2d_bench.harness.runner import make_task
from mv2d_bench.harness.trainer import Trainer

TINY = [
    "run.benchmark=synthetic-mv", "run.threads=1", "run.objective=baseline",
    "benchmark.samples=200", "benchmark.n_views=2", "benchmark.dims=6",
    "train.progress=false", "train.batch_size=32",
    "model.hidden=[16, 8]", "model.z_dim=4", "model.bottleneck_hidden=8",
    "model.relation_rank=2", "model.classifier_hidden=8",
]  # fmt: skip


@pytest.mark.parametrize("epochs,warmup", [(10, 0), (7, 2), (3, 1)])
def test_cosine_factor_is_torchs_cosine_annealing_after_the_warmup(epochs, warmup):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs - warmup, eta_min=0.0)
    torch_lrs = []
    for _ in range(epochs - warmup):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [lr_factor(e, [], 1.0, warmup, "cosine", epochs) for e in range(epochs)]
    assert ours[warmup:] == pytest.approx(torch_lrs, rel=1e-12, abs=1e-15)
    assert ours[:warmup] == pytest.approx([(e + 1) / warmup for e in range(warmup)])
    assert lr_factor(5, [1, 2], 0.1, 0, "step") == pytest.approx(0.01)  # step: unchanged


def test_sgd_with_nesterov_is_torchs_sgd_step_for_step():
    cfg = load_config(overrides=[*TINY, "train.optimizer=sgd", "train.momentum=0.8",
                                 "train.nesterov=true", "train.weight_decay=1e-4"])  # fmt: skip
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    ref = torch.nn.Parameter(w.detach().clone())
    ours = make_optimizer([w], cfg.train)
    fused = ours.defaults.get("fused")  # the fused kernel where torch has it for the device
    theirs = torch.optim.SGD(
        [ref], lr=1e-3, momentum=0.8, nesterov=True, weight_decay=1e-4, fused=fused
    )
    assert isinstance(ours, torch.optim.SGD)
    for step in range(5):
        for p, opt in ((w, ours), (ref, theirs)):
            opt.zero_grad()
            ((p * torch.tensor([3.0, 1.0 + step])) ** 2).sum().backward()
            opt.step()
    assert torch.equal(w, ref)
    adam = make_optimizer([w], load_config(overrides=TINY).train)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.5, 0.9)


def test_a_run_with_sgd_and_cosine_uses_them():
    cfg = load_config(overrides=[*TINY, "train.epochs=4", "train.optimizer=sgd",
                                 "train.schedule=cosine", "train.warmup_epochs=1",
                                 "train.lr=0.05"])  # fmt: skip
    trainer = Trainer(make_task(cfg), cfg)
    result = trainer.fit()
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.9
    expect = [0.05 * lr_factor(e, [], 1.0, 1, "cosine", 4) for e in range(4)]
    assert [h["lr"] for h in result.history] == pytest.approx(expect)
    assert expect[0] == pytest.approx(0.05) and expect[-1] == pytest.approx(0.0125)


@pytest.mark.parametrize(
    "setting,key",
    [
        ("train.optimizer=rmsprop", "train.optimizer"),
        ("train.schedule=linear", "train.schedule"),
        ("train.momentum=1.5", "train.momentum"),
        ("train.nesterov=true", "train.nesterov"),  # with adam
    ],
)
def test_bad_settings_name_the_key(setting, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(overrides=[*TINY, setting])
    with pytest.raises(ConfigError, match="'train.warmup_epochs'"):
        load_config(overrides=[*TINY, "train.schedule=cosine", "train.epochs=2",
                               "train.warmup_epochs=2"])  # fmt: skip


def test_new_keys_at_their_defaults_keep_older_records_matching():
    new = load_config(overrides=TINY).to_dict()
    later = ("optimizer", "momentum", "nesterov", "schedule")
    old = {**new, "train": {k: v for k, v in new["train"].items() if k not in later}}
    assert run_key(old) == run_key(new)
    assert canonical_config(new) == canonical_config(old)
    sgd = load_config(overrides=[*TINY, "train.optimizer=sgd"]).to_dict()
    assert run_key(sgd) != run_key(new)
    assert canonical_config(sgd)["train"]["optimizer"] == "sgd"


def test_leaderboard_groups_an_old_record_with_a_new_one_at_the_defaults():
    from mv2d_bench.leaderboards.board import group_key
    from mv2d_bench.leaderboards.testing import mvc_record

    old = mvc_record("hand", "mv2d", seed=0)
    new = mvc_record("hand", "mv2d", seed=1)
    new["config"]["train"].update(optimizer="adam", momentum=0.9, nesterov=False, schedule="step")
    assert "optimizer" not in old["config"]["train"]
    assert group_key(old) == group_key(new)
    new["config"]["train"]["schedule"] = "cosine"
    assert group_key(old) != group_key(new)
