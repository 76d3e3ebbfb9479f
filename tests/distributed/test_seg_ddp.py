"""The segmentation task under torchrun (gloo, 2 CPU processes): one scan per rank of each global
batch of two, the 2D/3D network in DistributedDataParallel, evaluation sharded over the ranks
(three validation scans: two on rank 0, one on rank 1) and synced; the run's score equals one
process scoring the same weights, and the record is valid."""

from __future__ import annotations

import pytest

from mv2d_bench.cli import main
from mv2d_bench.harness.evaluation import evaluate_checkpoint
from mv2d_bench.leaderboards.records import read_record

CONFIG = """
[run]
benchmark = "semantickitti"
objective = "mv2d"
threads = 1
root = "{root}"
[benchmark]
train_sequences = ["00"]
[train]
epochs = 1
batch_size = 2
progress = false
[model]
backbone_3d = "range"
encoder = [4, 4, 8, 8]
decoder = [8, 8, 4, 4]
stem = 4
z_dim = 4
fusion_width = 4
image_width = 4
image_size = [48, 160]
range_height = 16
range_width = 256
"""


def test_seg_two_processes_score_as_one(tmp_path, torchrun, shared_data):
    pytest.importorskip("torchvision", reason="the 2D branch needs torchvision")
    pytest.importorskip("PIL.Image")
    from mv2d_bench.loaders.seg_trees import shared_semantickitti_tree

    scans = {"00": [300, 301, 302, 303], "08": [250, 251, 252]}
    root = shared_semantickitti_tree(tmp_path / "kitti", shared_data, scans)
    cfg = tmp_path / "seg.toml"
    cfg.write_text(CONFIG.format(root=root))
    out = tmp_path / "runs"
    proc = torchrun(2, "-m", "mv2d_bench", "run", "--config", str(cfg), "--out", str(out),
                    "--checkpoint", str(out / "state.pt"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    (path,) = out.glob("semantickitti-*.json")
    record = read_record(path)
    assert record["environment"]["world_size"] == 2
    assert main(["leaderboard", "validate", str(path)]) == 0
    single = evaluate_checkpoint(out / "state.pt")
    assert single.world_size == 1
    assert single.score.metrics == {
        k: v for k, v in record["metrics"].items() if k in single.score.metrics
    }
