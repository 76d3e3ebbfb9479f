"""``mv2d-bench evaluate CHECKPOINT``: the saved best weights score exactly what the run's record
reports; --split, --weights, --predictions-out (which ``mv2d-bench score`` reads back)."""

from __future__ import annotations

import json

from mv2d_bench.cli import main
from mv2d_bench.leaderboards.records import read_record

ARGS = [
    "run", "--benchmark", "synthetic-mv", "--objective", "vib", "--epochs", "3", "--threads", "1",
    "--no-progress", "--set", "benchmark.samples=150", "--set", "benchmark.dims=6",
    "--set", "model.hidden=[16, 8]", "--set", "model.z_dim=4", "--set", "train.lr=0.01",
    "--set", "train.eval_batch_size=9",
]  # fmt: skip


def test_evaluate_reproduces_the_record_and_writes_scorable_predictions(tmp_path, capsys):
    out, ckpt = tmp_path / "runs", tmp_path / "state.pt"
    assert main([*ARGS, "--out", str(out), "--checkpoint", str(ckpt)]) == 0
    record = read_record(next(out.glob("*.json")))
    capsys.readouterr()

    def evaluate(*extra):
        assert main(["evaluate", str(ckpt), "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    test = evaluate("--predictions-out", str(tmp_path / "p.npz"))
    assert test["metrics"] == {"accuracy": record["metrics"]["accuracy"]}
    assert test["epoch"] == record["metrics"]["best_epoch"] and test["weights"] == "best"
    assert (test["world_size"], test["backend"], test["protocol"]) == (1, None, "mvc/accuracy@1")
    val = evaluate("--split", "val")
    assert val["metrics"]["accuracy"] == record["metrics"]["val_accuracy"]
    assert evaluate("--weights", "last")["epoch"] == 3
    preds = str(tmp_path / "p.npz")
    assert main(["score", "mvc/accuracy@1", "--predictions", preds, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == test["metrics"]
    # text output names the protocol, split and epoch
    assert main(["evaluate", str(ckpt)]) == 0
    text = capsys.readouterr().out
    assert "mvc/accuracy@1" in text and "test, best weights of epoch" in text


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.pt" in err and "Traceback" not in err
