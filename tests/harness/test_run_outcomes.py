"""What `mv2d-bench run` does around training: a finished run is not trained again (--force
does), a finished checkpoint whose record is missing gives the record without training, --out is
checked before training, a record that cannot go into --out lands next to the log, a non-finite
loss is one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mv2d_bench.cli import main
from mv2d_bench.harness import runner
from mv2d_bench.harness.checkpoints import load_checkpoint
from mv2d_bench.harness.runlog import read_log
from mv2d_bench.harness.trainer import Trainer
from mv2d_bench.leaderboards.records import read_record

ARGS = [
    "run", "--benchmark", "synthetic-mv", "--objective", "vib", "--epochs", "2", "--threads", "1",
    "--no-progress", "--set", "benchmark.samples=120", "--set", "benchmark.dims=6",
    "--set", "model.hidden=[16, 8]", "--set", "model.z_dim=4",
]  # fmt: skip


@pytest.fixture
def fits(monkeypatch):
    """How often Trainer.fit ran."""
    calls = []
    original = Trainer.fit

    def counted(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(Trainer, "fit", counted)
    return calls


def test_a_finished_run_is_not_trained_again_unless_forced(tmp_path, capsys, fits):
    out = tmp_path / "runs"
    assert main([*ARGS, "--out", str(out)]) == 0
    (record,) = out.glob("*.json")
    capsys.readouterr()
    assert main([*ARGS, "--out", str(out)]) == 0
    io = capsys.readouterr()
    assert io.out.strip() == str(record) and f"already recorded in {record}" in io.err
    assert len(fits) == 1 and list(out.glob("*.json")) == [record]
    assert main([*ARGS, "--out", str(out), "--force"]) == 0
    assert len(fits) == 2 and len(list(out.glob("*.json"))) == 2
    # another configuration is another run
    assert main([*ARGS, "--out", str(out), "--seed", "1"]) == 0 and len(fits) == 3


def test_finished_checkpoint_without_its_record_writes_it_without_training(tmp_path, capsys):
    out, ckpt = tmp_path / "runs", tmp_path / "state.pt"
    assert main([*ARGS, "--out", str(out), "--checkpoint", str(ckpt)]) == 0
    (first,) = out.glob("*.json")
    metrics = read_record(first)["metrics"]
    first.unlink()
    capsys.readouterr()
    assert main([*ARGS, "--out", str(out), "--checkpoint", str(ckpt)]) == 0
    io = capsys.readouterr()
    assert "holds this run finished" in io.err and "nothing was trained" in io.err
    (again,) = out.glob("*.json")
    assert read_record(again)["metrics"] == metrics
    rows = read_log(out / read_record(again)["artifacts"]["log"])
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2]  # not trained again


def test_out_is_checked_before_training(tmp_path, capsys, fits):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main([*ARGS, "--out", str(blocker / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mv2d-bench: error: {blocker / 'runs'}: --out: expected a folder")
    assert err.count("\n") == 1 and fits == []


def test_a_record_that_cannot_go_into_out_lands_next_to_the_log(tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    real = runner.write_record

    def refuse_out(folder, record, **kw):
        if Path(folder) == out:
            raise PermissionError(13, "Permission denied", str(out / "x.json"))
        return real(folder, record, **kw)

    monkeypatch.setattr(runner, "write_record", refuse_out)
    assert main([*ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    (saved,) = (out / "logs").glob("*.json")
    assert f"it was written to {saved} instead" in err and "Permission denied" in err
    record = read_record(saved)
    assert (saved.parent / record["artifacts"]["log"]).is_file()  # relative to its new folder
    assert err.count("\n") == 1 and str(out) in err
    # ... and the rerun finds it there: nothing is trained twice
    monkeypatch.setattr(runner, "write_record", real)
    assert main([*ARGS, "--out", str(out)]) == 0
    assert f"already recorded in {saved}" in capsys.readouterr().err


def test_non_finite_loss_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    from mv2d_bench import objectives

    cls, calls = objectives.get("vib"), []
    original = cls.forward

    def nan_at_step_7(self, outputs):
        terms = original(self, outputs)
        calls.append(1)
        return {k: v * float("nan") for k, v in terms.items()} if len(calls) == 7 else terms

    monkeypatch.setattr(cls, "forward", nan_at_step_7)
    ckpt = tmp_path / "state.pt"
    args = [*ARGS, "--out", str(tmp_path / "runs"), "--checkpoint", str(ckpt),
            "--set", "train.batch_size=16"]  # fmt: skip
    assert main(args) == 2  # 84 training items: 5 steps per epoch, call 7 = epoch 2, step 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "mv2d-bench: error: non-finite loss at epoch 2, step 2: term 'obj/vib' is nan; "
    ), err
    assert f"the last good checkpoint (at the end of epoch 1) is kept in {ckpt}" in err
    assert load_checkpoint(ckpt)["epoch"] == 1


def test_exploding_training_stops_before_a_checkpoint_holds_non_finite_weights(tmp_path, capsys):
    ckpt = tmp_path / "state.pt"
    args = [*ARGS, "--out", str(tmp_path / "runs"), "--checkpoint", str(ckpt),
            "--set", "train.lr=1e30"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.match(
        r"mv2d-bench: error: non-finite (loss at epoch \d+, step \d+: term|weights)", err
    )
    if ckpt.exists():  # whatever it keeps is finite
        state = load_checkpoint(ckpt)
        assert all(torch.isfinite(v).all() for v in state["model"].values())
