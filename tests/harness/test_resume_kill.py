"""SIGKILL for real: `mv2d-bench run --checkpoint` killed in the middle of an epoch (and again in
the middle of writing a checkpoint), then the same command resumed, ends with bitwise the weights,
optimiser, generators and metrics of the uninterrupted run, and a log with every epoch once.
(Rerunning a finished command: tests/harness/test_run_outcomes.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mv2d_bench.harness.checkpoints import load_checkpoint, states_equal
from mv2d_bench.harness.runlog import read_log
from mv2d_bench.leaderboards.records import read_record

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
[run]
benchmark = "synthetic-mv"
objective = "mv2d"
threads = 1
[benchmark]
samples = 240
n_views = 3
dims = 8
[train]
epochs = 4
batch_size = 32
lr_milestones = [2]
checkpoint_every = 2
progress = false
[model]
hidden = [32, 16]
z_dim = 8
bottleneck_hidden = 8
relation_rank = 4
classifier_hidden = 8
"""
STEPS_PER_EPOCH = 5  # 168 training items, batches of 32, last one dropped


def cli(*args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MV2D_FAULT", None)
    if fault:
        env["MV2D_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "mv2d_bench", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_sigkill_mid_epoch_and_mid_checkpoint_then_resume_is_bitwise(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG)
    ref = cli("run", "--config", str(cfg), "--out", str(tmp_path / "ref"),
              "--checkpoint", str(tmp_path / "ref.pt"))  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    out, ckpt = tmp_path / "out", tmp_path / "state.pt"
    args = ("run", "--config", str(cfg), "--out", str(out), "--checkpoint", str(ckpt))
    # 1. killed after step 8 = epoch 2, step 3 (one step after its mid-epoch checkpoint)
    killed = cli(*args, fault="kill-after-step=8")
    assert killed.returncode == -signal.SIGKILL
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["step"]) == (1, 2)  # epoch 2 (index 1), 2 steps in
    assert not list(out.glob("*.json")) and list((out / "logs").glob("*.jsonl.part"))
    # 2. resumed, killed while writing its second checkpoint: the first one stays intact
    killed = cli(*args, fault="kill-in-checkpoint=2")
    assert killed.returncode == -signal.SIGKILL
    state = load_checkpoint(ckpt)
    # its first save (epoch 2, step 4) is intact; the second (end of epoch 2) never landed
    assert (state["epoch"], state["step"]) == (1, 4)
    assert list(tmp_path.glob(".state.pt.*.tmp")), "the killed write left its temporary file"
    # 3. resumed to the end with the same command
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(".state.pt.*.tmp"))  # the stale temporary file is gone
    (rec_path,) = out.glob("*.json")
    assert done.stdout.strip().splitlines()[-1] == str(rec_path)
    (ref_path,) = (tmp_path / "ref").glob("*.json")
    rec, want = read_record(rec_path), read_record(ref_path)
    assert rec["metrics"] == want["metrics"] and rec["per_trial"] == want["per_trial"]
    a, b = load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(ckpt)
    for key in ("model", "objective", "optimizer", "best", "generator", "history", "rng"):
        assert states_equal(a[key], b[key]), key
    rows = read_log(out / rec["artifacts"]["log"])
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]  # every epoch exactly once
    assert [r["event"] for r in rows].count("resume") == 2
    ref_rows = read_log(tmp_path / "ref" / want["artifacts"]["log"])
    ref_epochs = [r for r in ref_rows if r["event"] == "epoch"]
    strip = [{k: v for k, v in r.items() if k != "time"} for r in epochs]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in ref_epochs]
