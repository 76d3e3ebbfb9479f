"""The process-group helpers: shares of a global batch, evaluation shards, the backend that
torchrun's environment selects (NCCL on CUDA, gloo on the CPU), per-process CUDA devices."""

from __future__ import annotations

import pytest
import torch

from mv2d_bench.harness import distributed
from mv2d_bench.harness.distributed import World


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 7, 32, 33])
def test_shares_partition_a_global_batch_and_shards_cover_every_batch_once(size, n):
    shares = [World(r, size).share(10, 10 + n) for r in range(size)]
    rows = [i for lo, hi in shares for i in range(lo, hi)]
    assert rows == list(range(10, 10 + n))  # contiguous, disjoint, in order
    lengths = [hi - lo for lo, hi in shares]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)
    assert lengths == [len(t) for t in torch.tensor_split(torch.arange(n), size)]
    shards = [list(World(r, size).shard(n)) for r in range(size)]
    assert sorted(b for s in shards for b in s) == list(range(n))
    assert all(b % size == r for r, s in enumerate(shards) for b in s)


def test_backend_follows_the_device(monkeypatch):
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda b: calls.append(b))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env("cpu") is False and calls == []  # not under torchrun
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.init_from_env("cpu") is True and calls == ["gloo"]
    devices = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: devices.append(i))
    assert distributed.init_from_env("cuda") is True
    assert calls == ["gloo", "nccl"] and devices == [1]  # pinned to cuda:LOCAL_RANK
    assert distributed.init_from_env("auto") is True and calls[-1] == "nccl"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.init_from_env("auto") is True and calls[-1] == "gloo"
    with pytest.raises(ValueError, match="sees no CUDA device"):
        distributed.init_from_env("cuda")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        distributed.init_from_env("cpu")


def test_each_process_gets_its_local_gpu(monkeypatch):
    monkeypatch.setattr(distributed, "world", lambda: World(3, 4, "nccl", local_rank=1))
    assert distributed.run_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert distributed.run_device(torch.device("cpu")) == torch.device("cpu")


def test_too_small_global_batches_name_the_key(monkeypatch):
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.runner import make_task

    config = load_config(overrides=["run.benchmark=synthetic-mv", "benchmark.samples=60",
                                    "train.batch_size=2"])  # fmt: skip
    task = make_task(config)
    task.setup()
    monkeypatch.setattr(type(task), "world", property(lambda self: World(0, 3, "gloo")))
    with pytest.raises(ValueError, match="'train.batch_size' is the global batch"):
        next(iter(task.train_batches(0, torch.Generator().manual_seed(0))))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices (NCCL)")
def test_nccl_two_gpus(tmp_path, torchrun):  # pragma: no cover - never ran on this machine
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nbenchmark = "synthetic-mv"\ndevice = "cuda"\n[train]\nepochs = 1\n'
                   "progress = false\n")  # fmt: skip
    proc = torchrun(2, "-m", "mv2d_bench", "run", "--config", str(cfg), "--out", str(tmp_path),
                    cuda=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    (rec,) = tmp_path.glob("*.json")
    env = json.loads(rec.read_text())["environment"]
    assert env["world_size"] == 2 and env["backend"] == "nccl"
