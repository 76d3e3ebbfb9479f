"""The GPU path: ReID evaluation on CUDA gives the CPU's metrics exactly (float32 products with
the float64 recount of near-ties, and float64), and a training run with --device cuda and
train.amp (float16 autocast with a gradient scaler) writes a valid record. Every test here
skips where torch sees no CUDA device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="CUDA is not available (torch.cuda.is_available() is False): the GPU path is tested "
    "only on a machine with an NVIDIA GPU",
)


def _problem(seed=0, dim=2048):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, 31)
    centres = rng.normal(size=(ids.max() + 1, dim))
    g_ids = np.repeat(ids, 4 * 12)
    g_cams = np.tile(np.repeat([1, 2, 4, 5], 12), ids.size)
    q_ids = np.repeat(ids, 10)
    q_cams = np.tile([3, 6], q_ids.size // 2)
    gf = centres[g_ids] + 6.0 * rng.normal(size=(g_ids.size, dim))
    qf = centres[q_ids] + 6.0 * rng.normal(size=(q_ids.size, dim))
    gf[1::7] = gf[::7][: gf[1::7].shape[0]]  # exact duplicates: ties the recount must order
    return {
        "query_feat": qf.astype(np.float32), "query_ids": q_ids, "query_cams": q_cams,
        "gallery_feat": gf.astype(np.float32), "gallery_ids": g_ids, "gallery_cams": g_cams,
        "gallery_index": np.tile(np.arange(12), g_ids.size // 12),
    }  # fmt: skip


@pytest.mark.parametrize("product", ["auto", "float32", "float64"])
def test_sysu_on_cuda_equals_the_cpu(product):
    from mv2d_bench.leaderboards.protocols import sysu

    arrays = _problem()
    rng = np.random.default_rng(1)
    perms = {c: {i: np.stack([rng.permutation(12) for _ in range(10)]) for i in range(1, 31)}
             for c in (1, 2, 4, 5)}  # fmt: skip
    for cls, kw in ((sysu.OfficialAllSearchMultiShot, {"rand_perm_cam": perms}),
                    (sysu.SeededAllSearchSingleShot, {})):  # fmt: skip
        cpu = cls(device="cpu", product="float64", **kw).score(**arrays)
        on_gpu = {k: torch.as_tensor(v, device="cuda") for k, v in arrays.items()}
        gpu = cls(product=product, **kw).score(**on_gpu)  # follows the tensors to the GPU
        assert gpu.per_trial == cpu.per_trial and gpu.metrics == cpu.metrics


def test_regdb_on_cuda_equals_the_cpu():
    from mv2d_bench.leaderboards.protocols.regdb import VisibleToThermal

    a = _problem(3)
    arrays = {
        "query_feat": a["query_feat"], "query_ids": a["query_ids"],
        "query_cams": np.ones_like(a["query_ids"]), "gallery_feat": a["gallery_feat"],
        "gallery_ids": a["gallery_ids"], "gallery_cams": np.full_like(a["gallery_ids"], 2),
    }  # fmt: skip
    cpu = VisibleToThermal(device="cpu").score(**arrays)
    gpu = VisibleToThermal(device="cuda").score(**arrays)
    assert gpu.metrics == cpu.metrics


def test_training_on_cuda_with_amp_writes_a_valid_record(tmp_path):
    pytest.importorskip("torchvision")
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import test_reid_training as T
    finally:
        sys.path.pop(0)
    from mv2d_bench.cli import main
    from mv2d_bench.leaderboards.records import read_record
    from mv2d_bench.leaderboards.testing import write_rand_perm_cam

    tree = T.write_sysu_tree(tmp_path / "SYSU-MM01")
    write_rand_perm_cam(tree)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(T.CONFIG.format(cache=tmp_path / "cache", extras="[]"))
    out = tmp_path / "runs"
    args = ["run", "--benchmark", "sysu-mm01", "--objective", "mv2d", "--root", str(tree),
            "--config", str(cfg), "--out", str(out), "--no-progress", "--device", "cuda",
            "--set", "train.amp=true"]  # fmt: skip
    assert main(args) == 0
    (path,) = sorted(out.glob("sysu-mm01-*.json"))
    record = read_record(path)
    assert main(["leaderboard", "validate", str(path)]) == 0
    assert record["environment"]["device"].startswith("cuda")
    assert record["config"]["train"]["amp"] is True
    rows = [json.loads(x) for x in (out / record["artifacts"]["log"]).read_text().splitlines()]
    assert all(np.isfinite(v) for r in rows if r["event"] == "epoch" for v in r["loss"].values())
