"""The trainer-owned evaluation loop: the task's batches through the protocol's streaming metric
give the numbers that ``mv2d-bench score`` gives for the same predictions (one code path), and
the best epoch follows ``Protocol.best_epoch``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mv2d_bench.cli import main
from mv2d_bench.config import load_config
from mv2d_bench.harness.evaluation import collect_predictions, evaluate
from mv2d_bench.harness.runner import make_task
from mv2d_bench.harness.trainer import Trainer

TINY = [
    "run.benchmark=synthetic-mv", "run.threads=1", "run.objective=vib",
    "benchmark.samples=230", "benchmark.n_views=3", "benchmark.dims=8",
    "train.progress=false", "train.batch_size=32", "train.epochs=3",
    "model.hidden=[16, 8]", "model.z_dim=4", "model.bottleneck_hidden=8",
    "model.relation_rank=2", "model.classifier_hidden=8",
]  # fmt: skip


def offline_score(protocol_id: str, arrays: dict, tmp_path, capsys) -> dict:
    path = tmp_path / "preds.npz"
    np.savez(path, **arrays)
    capsys.readouterr()
    assert main(["score", protocol_id, "--predictions", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("eval_batch", [4096, 7])
def test_in_run_scores_equal_offline_scores_of_the_same_predictions(
    tmp_path, capsys, monkeypatch, eval_batch
):
    config = load_config(overrides=TINY)
    task = make_task(config)
    monkeypatch.setattr(type(task), "eval_batch_size", eval_batch)
    trainer = Trainer(task, config)
    result = trainer.fit()
    for split in ("val", "test"):
        arrays = collect_predictions(task, trainer.model, split)
        assert sorted(arrays) == ["label", "pred"]
        assert torch.equal(torch.from_numpy(arrays["label"]), task.parts[split][1])
        got = offline_score(task.protocol.id, arrays, tmp_path, capsys)
        score = evaluate(task, trainer.model, split)
        assert got["metrics"] == score.metrics and got["per_trial"] == score.per_trial
        expect = 100.0 * np.mean(arrays["pred"] == arrays["label"])
        assert score.metrics["accuracy"] == pytest.approx(expect, abs=1e-12)
    assert result.test_score.metrics == evaluate(task, trainer.model, "test").metrics


def test_best_epoch_is_the_protocols_rule(monkeypatch):
    """The trainer keeps the epoch that Protocol.best_epoch picks (here: forced ties)."""
    config = load_config(overrides=[*TINY, "train.epochs=4"])
    task = make_task(config)
    trainer = Trainer(task, config)
    calls = []
    original = trainer.evaluate

    def fake(split):
        score = original(split)
        if split == "val":
            score.metrics["accuracy"] = [50.0, 70.0, 70.0, 60.0][len(calls)]
            calls.append(split)
        return score

    monkeypatch.setattr(trainer, "evaluate", fake)
    result = trainer.fit()
    assert result.best_epoch == 2 and result.val_metrics["accuracy"] == 70.0
    picked = task.protocol.best_epoch([h["val"]["accuracy"] for h in result.history])
    assert picked + 1 == result.best_epoch


def test_eval_batches_of_a_single_process_cover_the_split_once(monkeypatch):
    config = load_config(overrides=TINY)
    task = make_task(config)
    task.setup()
    monkeypatch.setattr(type(task), "eval_batch_size", 5)
    batches = list(task.eval_batches("test"))
    n = len(task.parts["test"][1])
    assert n % 5 and [len(b.target) for b in batches] == [5] * (n // 5) + [n % 5]
    assert torch.equal(torch.cat([b.target for b in batches]), task.parts["test"][1])
    with pytest.raises(ValueError, match="no 'train' split"):
        list(task.eval_batches("train"))
