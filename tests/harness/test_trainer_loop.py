"""The task-agnostic trainer on the MVC task: repeatable, schedule, best-epoch selection, log,
checkpoint resume, non-finite losses."""

from __future__ import annotations

import json

import pytest
import torch

from mv2d_bench.config import load_config
from mv2d_bench.harness.checkpoints import load_checkpoint, states_equal
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


@pytest.mark.parametrize("stop_at", [3, 5, 9, 16])  # 5 steps per epoch: mid-epoch and between
def test_interrupted_run_resumes_bitwise(tmp_path, monkeypatch, stop_at):
    config = tiny_config("train.checkpoint_every=2", epochs=4)
    _, full = fit(config, checkpoint_path=tmp_path / "full.pt")
    ckpt, log = tmp_path / "state.pt", tmp_path / "run.jsonl"
    original, calls = Trainer.train_step, []

    def interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(config, checkpoint_path=ckpt, log_path=log)
    assert (tmp_path / "run.jsonl.part").exists() and not log.exists()
    monkeypatch.setattr(Trainer, "train_step", original)
    trainer, resumed = fit(config, checkpoint_path=ckpt, log_path=log)
    epoch, step = divmod(stop_at - 1, 5)  # steps done: the last checkpoint is at an even step
    assert (trainer.resumed_from["epoch"], trainer.resumed_from["step"]) == (epoch, step // 2 * 2)
    assert resumed.history == full.history and resumed.test_metrics == full.test_metrics
    a, b = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(ckpt)
    for key in ("model", "objective", "optimizer", "best", "generator", "history"):
        assert states_equal(a[key], b[key]), key
    rows = read_log(log)
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2, 3, 4]
    assert [r["event"] for r in rows].count("resume") == 1


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    ckpt = tmp_path / "state.pt"
    fit(tiny_config(epochs=1), checkpoint_path=ckpt)
    with pytest.raises(ValueError, match=r"'config' differs .*train.lr: 0.001 -> 0.01"):
        fit(tiny_config("train.lr=0.01", epochs=1), checkpoint_path=ckpt)
    # what never changes the numbers may differ (progress bar, checkpoint frequency)
    trainer, _ = fit(tiny_config("train.checkpoint_every=3", epochs=1), checkpoint_path=ckpt)
    assert trainer.resumed_from["finished"] and trainer.resumed_from["epoch"] == 1
    # --force starts over
    trainer, _ = fit(tiny_config("train.lr=0.01", epochs=1), checkpoint_path=ckpt, force=True)
    assert trainer.resumed_from is None and load_checkpoint(ckpt)["config"]["train"]["lr"] == 0.01
    state = load_checkpoint(ckpt)
    state["world_size"] = 2
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match="'world_size': written by 2 process"):
        fit(tiny_config("train.lr=0.01", epochs=1), checkpoint_path=ckpt)
    ckpt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        fit(tiny_config(epochs=1), checkpoint_path=ckpt)


def test_objective_parameters_are_trained(tmp_path):
    trainer, _ = fit(tiny_config(objective="cib", epochs=1))
    critic = list(trainer.objective.parameters())
    assert critic, "CIB's critics were not built before the optimiser"
    trained = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in trained for p in critic)


def test_non_finite_loss_stops_with_the_term_epoch_and_step(monkeypatch, tmp_path):
    """A NaN at epoch 2, step 3 stops the run with one line naming the term, epoch and step;
    the checkpoint on disk is the last good one (end of epoch 1), never a NaN-stepped one."""
    config = tiny_config(epochs=3)
    task = make_task(config)
    original, calls = task.losses, []

    def losses(model, outputs, batch):
        calls.append(1)
        terms = original(model, outputs, batch)
        if len(calls) == 5 + 3:  # 5 steps per epoch
            terms["rank"] = terms["rank"] * float("nan")
        return terms

    monkeypatch.setattr(task, "losses", losses)
    ckpt = tmp_path / "state.pt"
    with pytest.raises(TrainingError) as info:
        Trainer(task, config, checkpoint_path=ckpt).fit()
    message = str(info.value)
    assert message.startswith("non-finite loss at epoch 2, step 3: term 'rank' is nan")
    assert f"the last good checkpoint (at the end of epoch 1) is kept in {ckpt}" in message
    assert "\n" not in message
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["step"]) == (1, 0)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_history_is_json_serialisable():
    _, result = fit(tiny_config(epochs=1))
    json.dumps(result.history)
