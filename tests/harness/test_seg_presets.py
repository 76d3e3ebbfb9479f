"""The segmentation paper presets resolve to the issue's recipe: SGD Nesterov, momentum 0.9,
weight decay 1e-4, lr 0.24, linear warm-up then cosine, 40 epochs, batch 8; CE + focal (gamma 2)
+ Lovasz-softmax with weights 1, 1, 1; the full-scan protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from mv2d_bench.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "paper"


@pytest.mark.parametrize(
    ("name", "benchmark", "protocol", "image_size"),
    [
        ("nuscenes.toml", "nuscenes-lidarseg", "nuscenes-lidarseg/val@1", [360, 640]),
        ("semantickitti.toml", "semantickitti", "semantickitti/val@1", [376, 1241]),
    ],
)
def test_paper_preset(name, benchmark, protocol, image_size):
    cfg = load_config(CONFIGS / name)
    t = cfg.train
    assert (cfg.run.benchmark, cfg.run.objective) == (benchmark, "mv2d")
    assert (t.optimizer, t.momentum, t.nesterov, t.weight_decay) == ("sgd", 0.9, True, 1e-4)
    assert (t.lr, t.schedule, t.warmup_epochs, t.epochs, t.batch_size) == (0.24, "cosine", 1, 40, 8)
    loss = cfg.section("loss")
    assert (loss.ce, loss.focal, loss.focal_gamma, loss.lovasz) == (1.0, 1.0, 2.0, 1.0)
    model = cfg.section("model")
    assert model.backbone_3d == "spconv" and model.voxel_size == 0.05
    assert model.encoder == [32, 64, 128, 256] and model.decoder == [256, 128, 96, 96]
    assert model.image_size == image_size and model.li_fusion and model.bottleneck == "both"
    assert cfg.section("seg").protocol == protocol
    assert cfg.objective["weight"] == 1.0
