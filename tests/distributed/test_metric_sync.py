"""Every protocol's metric synced over 3 gloo processes (torchrun, CPU) equals the 1-process
score exactly: batch b on rank b % 3, split sizes not divisible by 3, and ranks that receive
no batch of an item group (or none at all)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mv2d_bench.leaderboards.protocols import get
from mv2d_bench.registry import registry

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORLD = 3


def split_for(proto, rng):
    """A split of the protocol's keys (factories in ../leaderboards/test_protocol_metrics.py)."""
    sys.path.insert(0, str(REPO / "tests" / "leaderboards"))
    try:
        import test_protocol_metrics as factories
    finally:
        sys.path.pop(0)
    return factories.split_arrays(proto, int(rng.integers(1000)))


def test_three_processes_equal_one_process_for_every_protocol(tmp_path, monkeypatch, torchrun):
    from mv2d_bench.leaderboards.testing import write_rand_perm_cam_sizes

    # SYSU-MM01's official ids (@2) read their permutations in every process: from the file
    # $MV2D_SYSU_RAND_PERM names (the factories' galleries: 2 images per identity and camera)
    sizes = {(c, i): 2 for c in (1, 2, 4, 5) for i in range(1, 8)}
    write_rand_perm_cam_sizes(sizes, tmp_path / "rand_perm_cam.mat")
    monkeypatch.setenv("MV2D_SYSU_RAND_PERM", str(tmp_path / "rand_perm_cam.mat"))
    rng = np.random.default_rng(0)
    plan, expected = [], []
    for n, entry in enumerate(registry("protocols").entries()):
        proto = get(entry.name)
        arrays = split_for(proto, rng)
        np.savez(tmp_path / f"{n}.npz", **arrays)
        if proto.dataset_index_keys:
            # queries in 2 batches (rank 2 gets none), gallery in 3 uneven ones
            q = len(arrays["query_ids"])
            batch = {"query": -(-q // 2), "gallery": 20}
        else:
            batch = {"": 40}  # 101 items: 40, 40, 21
        plan.append({"protocol": proto.id, "batch": batch})
        expected.append(proto.score(**arrays))
    plan.append({"protocol": "mvc/accuracy@1", "batch": {"": 60}})  # 2 batches: rank 2 idle
    np.savez(tmp_path / f"{len(plan) - 1}.npz", **np.load(tmp_path / "0.npz"))
    expected.append(get("mvc/accuracy@1").score(**np.load(tmp_path / "0.npz")))
    assert get(plan[0]["protocol"]).benchmark == "mvc", "the idle-rank case reuses the MVC split"
    seven = {k: v[:7] for k, v in np.load(tmp_path / "0.npz").items()}  # 7 items, batches of 2
    plan.append({"protocol": "mvc/accuracy@1", "batch": {"": 2}})
    np.savez(tmp_path / f"{len(plan) - 1}.npz", **seven)
    expected.append(get("mvc/accuracy@1").score(**seven))
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = torchrun(WORLD, str(HERE / "metric_worker.py"), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = [json.loads((tmp_path / f"result-{r}.json").read_text()) for r in range(WORLD)]
    for rank, res in enumerate(results):
        assert res["world"] == WORLD
        for n, score in enumerate(expected):
            got = res["scores"][str(n)]
            assert got["metrics"] == score.metrics, (rank, plan[n])
            assert got["per_trial"] == score.per_trial
    # the shares really were uneven: a rank without a batch; 7 items as 2 + 1 + 1 batches
    assert [r["scores"][str(len(plan) - 2)]["batches"] for r in results] == [1, 1, 0]
    assert [r["scores"][str(len(plan) - 1)]["batches"] for r in results] == [2, 1, 1]
