"""Warnings of mv2d-bench itself print as one line, ``mv2d-bench: warning: ...`` (a deprecated
spelling in a config, say); other libraries' warnings keep Python's format and location."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mv2d_bench import cli


def test_our_warnings_are_one_line_and_others_keep_their_location():
    ours = Path(cli.__file__).parent / "config.py"
    got = cli._format_warning(FutureWarning("old\nspelling"), FutureWarning, str(ours), 440)
    assert got == "mv2d-bench: warning: old; spelling\n"  # one line
    theirs = cli._format_warning(UserWarning("x"), UserWarning, "/lib/torch/nn.py", 7)
    assert theirs.startswith("/lib/torch/nn.py:7: UserWarning: x")


def test_the_legacy_model_name_warns_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "mv2d_bench", "run", "--benchmark", "synthetic-mv",
           "--objective", "baseline", "--epochs", "1", "--no-progress", "--out", str(tmp_path),
           "--set", "benchmark.samples=120", "--set", "model.name=mvnncor",
           "--set", "model.z_dim=4", "--set", "model.hidden=[8, 4]"]  # fmt: skip
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if "warning" in ln.lower()]
    assert len(lines) == 1 and lines[0].startswith(
        "mv2d-bench: warning: model.name 'mvnncor' with the keys of the MV2D network (z_dim)"
    )
