"""The task-agnostic trainer on the MVC task: repeatable, schedule, best-epoch selection, log,
checkpoint resume, non-finite losses."""

from __future__ import annotations

import json

import pytest
import torch

from mv2d_bench.config import load_config
from mv2d_bench.harness.runlog import read_log
from mv2d_bench.harness.runner import make_task
from mv2d_bench.harness.trainer import Trainer, TrainingError, lr_factor

TINY = [
    "run.benchmark=synthetic-mv",
    "run.threads=1",
    "benchmark.samples=240",
    "benchmark.n_views=3",
    "benchmark.dims=8",
    "benchmark.noise=1.5",
    "train.progress=false",
    "train.batch_size=32",
    "train.lr_milestones=[2]",
    "model.hidden=[32, 16]",
    "model.z_dim=8",
    "model.bottleneck_hidden=8",
    "model.relation_rank=4",
    "model.classifier_hidden=8",
]


def tiny_config(*extra: str, epochs: int = 3, objective: str = "mv2d"):
    return load_config(
        overrides=[*TINY, f"train.epochs={epochs}", f"run.objective={objective}", *extra]
    )


def fit(config, **kwargs):
    trainer = Trainer(make_task(config), config, **kwargs)
    return trainer, trainer.fit()


def test_same_seed_same_run_other_seed_other_run():
    _, a = fit(tiny_config())
    _, b = fit(tiny_config())
    _, c = fit(tiny_config("run.seed=1"))
    assert a.history == b.history  # every epoch's loss terms and val accuracy, bit for bit
    assert a.test_metrics == b.test_metrics and a.best_epoch == b.best_epoch
    assert [h["loss"] for h in a.history] != [h["loss"] for h in c.history]


def test_lr_schedule_steps_and_warmup():
    assert lr_factor(29, [30, 60], 0.05, 0) == 1.0
    assert lr_factor(30, [30, 60], 0.05, 0) == pytest.approx(0.05)
    assert lr_factor(159, [30, 60], 0.05, 0) == pytest.approx(0.0025)
    assert lr_factor(0, [30], 0.1, 4) == pytest.approx(0.25)
    _, result = fit(tiny_config())
    assert [h["lr"] for h in result.history] == pytest.approx([1e-3, 1e-3, 0.05e-3])


def test_reports_test_metrics_of_the_best_validation_epoch(tmp_path):
    trainer, result = fit(tiny_config(epochs=4), log_path=tmp_path / "run.jsonl")
    vals = [h["val"]["accuracy"] for h in result.history]
    assert result.best_epoch == vals.index(max(vals)) + 1  # earliest best epoch
    assert result.val_metrics["accuracy"] == max(vals)
    # the model now holds the best epoch's weights: re-evaluating gives the same numbers
    assert trainer.evaluate("val").metrics == result.val_metrics
    assert trainer.evaluate("test").metrics == result.test_metrics
    assert result.test_score.metrics == result.test_metrics
    rows = read_log(tmp_path / "run.jsonl")
    assert [r["event"] for r in rows] == ["start"] + ["epoch"] * 4 + ["test"]
    assert rows[-1]["best_epoch"] == result.best_epoch
    assert rows[-1]["test"] == result.test_metrics
    assert set(rows[1]["loss"]) == {
        "ce_obs", "ce_rep", "ce_fused", "rank", "obj/sufficiency", "obj/consistency"
    }  # fmt: skip
    assert not (tmp_path / "run.jsonl.part").exists()


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    _, full = fit(tiny_config(epochs=4))
    ckpt = tmp_path / "state.pt"
    original = Trainer._train_epoch

    def interrupt(self, epoch, gen, bar):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch, gen, bar)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(epochs=4), checkpoint_path=ckpt, log_path=tmp_path / "a.jsonl")
    assert (tmp_path / "a.jsonl.part").exists() and not (tmp_path / "a.jsonl").exists()
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    _, resumed = fit(tiny_config(epochs=4), checkpoint_path=ckpt)
    assert resumed.history == full.history
    assert resumed.test_metrics == full.test_metrics
    with pytest.raises(ValueError, match="'config' differs"):
        fit(tiny_config("train.lr=0.01", epochs=4), checkpoint_path=ckpt)


def test_objective_parameters_are_trained(tmp_path):
    trainer, _ = fit(tiny_config(objective="cib", epochs=1))
    critic = list(trainer.objective.parameters())
    assert critic, "CIB's critics were not built before the optimiser"
    trained = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in trained for p in critic)


def test_non_finite_loss_stops_with_the_terms(monkeypatch):
    config = tiny_config()
    task = make_task(config)
    monkeypatch.setattr(
        task, "losses", lambda model, out, batch: {"ce_fused": torch.tensor(float("nan"))}
    )
    with pytest.raises(TrainingError, match=r"epoch 1, step 1: terms \{'ce_fused': nan"):
        Trainer(task, config).fit()


def test_history_is_json_serialisable():
    _, result = fit(tiny_config(epochs=1))
    json.dumps(result.history)
