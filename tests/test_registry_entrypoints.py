"""Entry points with real installed distributions: the four plugins under tests/plugins/.

These run in the tox env ``plugins``, which pip-installs mv2d-bench and the distributions
mv2d-plugin-good, mv2d-plugin-broken, mv2d-plugin-clash and mv2d-plugin-plain (objectives that are
plain torch.nn.Module subclasses and never import mv2d_bench). Nothing here patches
``importlib.metadata``: the registry sees exactly what pip installed. Elsewhere the module is
skipped (with ``MV2D_REQUIRE_PLUGINS=1``, as the ``plugins`` env sets, a missing distribution is
a failure instead, so that env cannot pass without running these tests).

Installing mv2d-plugin-clash makes the built-in ``vsd`` unusable in that environment (that is the
point), which is why these tests live in their own env.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

PLUGINS = ("mv2d-plugin-good", "mv2d-plugin-broken", "mv2d-plugin-clash", "mv2d-plugin-plain")
BUILTINS_UNTOUCHED = ("baseline", "vib", "cib", "vcd", "vmd", "mv2d")  # all but the clashed vsd


def _missing() -> list[str]:
    out = []
    for name in PLUGINS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


MISSING = _missing()
if MISSING and os.environ.get("MV2D_REQUIRE_PLUGINS") == "1":
    raise RuntimeError(
        f"MV2D_REQUIRE_PLUGINS=1 but {', '.join(MISSING)} not installed; "
        "pip install ./tests/plugins/* (the tox env 'plugins' does)"
    )

pytestmark = [
    pytest.mark.plugins,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"plugin distributions not installed ({', '.join(MISSING)}); "
        "they run in the tox env 'plugins' (tox -e plugins)",
    ),
]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """Run the installed console script (a fresh process: a fresh metadata scan)."""
    script = Path(sys.executable).with_name("mv2d-bench")
    if not script.exists():
        found = shutil.which("mv2d-bench")
        script = Path(found) if found else None
    cmd = [str(script)] if script else [sys.executable, "-m", "mv2d_bench.cli"]
    env = dict(os.environ, HF_DATASETS_OFFLINE="1")
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, timeout=300, env=env, check=False
    )


@pytest.fixture(scope="module")
def listing() -> dict[str, dict]:
    proc = _cli("objectives", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    return {row["name"]: row for row in rows}


def test_good_plugin_is_listed_with_its_distribution(listing):
    row = listing["good-kl"]
    assert row == {
        "name": "good-kl",
        "distribution": "mv2d-plugin-good",
        "version": metadata.version("mv2d-plugin-good"),
        "status": "ok",
        "error": None,
        "needs": ["fused_logits", "rep_logits"],
    }


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_good_plugin_is_created_by_name_and_computes_its_kl():
    import torch

    from mv2d_bench import objectives
    from mv2d_bench.registry import registry
    from mv2d_bench.views import ViewOutputs

    obj = objectives.create("good-kl", temperature=2.0, weight=0.5)
    assert isinstance(obj, objectives.DistillationObjective)
    assert type(obj).__module__ == "mv2d_plugin_good"
    assert registry("objectives").entry("good-kl").distribution == "mv2d-plugin-good"

    gen = torch.Generator().manual_seed(0)
    fused = torch.randn(7, 5, generator=gen, dtype=torch.float64) * 3
    views = [torch.randn(7, 5, generator=gen, dtype=torch.float64) * 3 for _ in range(3)]
    mask = torch.tensor([True, False, True, True, False, True, True])
    terms = obj(ViewOutputs(rep_logits=views, fused_logits=fused, mask=mask))

    # sum over views of the mean over valid items of KL(softmax(f/T) || softmax(z_i/T)), times 0.5
    log_p = _log_softmax(fused.numpy() / 2.0)
    expected = 0.0
    for z in views:
        log_q = _log_softmax(z.numpy() / 2.0)
        per_item = (np.exp(log_p) * (log_p - log_q)).sum(axis=1)
        expected += per_item[mask.numpy()].mean()
    assert set(terms) == {"fused_to_view"}
    assert terms["fused_to_view"].item() == pytest.approx(0.5 * expected, rel=1e-5)
    assert expected > 0.1


def test_broken_plugin_is_listed_with_its_error_and_the_rest_work(listing):
    row = listing["broken-obj"]
    assert row["status"] == "broken"
    assert row["distribution"] == "mv2d-plugin-broken"
    assert "RuntimeError: mv2d-plugin-broken fails at import on purpose" in row["error"]
    assert "mv2d_plugin_broken:BrokenObjective" in row["error"]
    assert row["needs"] == []
    for name in BUILTINS_UNTOUCHED:
        assert listing[name]["status"] == "ok", listing[name]["error"]
        assert listing[name]["error"] is None
        assert listing[name]["distribution"] == "mv2d-bench"
    assert listing["good-kl"]["status"] == "ok"


def test_broken_plugin_raises_on_use_and_others_still_load():
    from mv2d_bench import objectives
    from mv2d_bench.registry import BrokenPluginError

    with pytest.raises(BrokenPluginError, match="fails at import on purpose"):
        objectives.create("broken-obj")
    vib = objectives.create("vib")  # the registry keeps working after a broken plugin
    assert type(vib).__module__ == "mv2d_bench.objectives.vib"
    assert objectives.create("good-kl").temperature == 1.0


def test_clash_is_an_error_naming_both_distributions(listing):
    from mv2d_bench import objectives
    from mv2d_bench.registry import ConflictError

    row = listing["vsd"]
    assert row["status"] == "broken"
    assert "mv2d-bench" in row["error"] and "mv2d-plugin-clash" in row["error"]

    with pytest.raises(ConflictError) as info:
        objectives.create("vsd")
    message = str(info.value)
    assert f"mv2d-bench {metadata.version('mv2d-bench')}" in message
    assert f"mv2d-plugin-clash {metadata.version('mv2d-plugin-clash')}" in message

    proc = _cli("objectives", "show", "vsd")
    assert proc.returncode == 2
    assert proc.stdout == ""
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err  # one line, no traceback
    assert "mv2d-bench" in err and "mv2d-plugin-clash" in err


@pytest.fixture(scope="module")
def text_listing() -> str:
    proc = _cli("objectives", "list")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_text_listing_shows_each_plugin_with_its_status(text_listing):
    lines = {line.split()[0]: line.split() for line in text_listing.splitlines()}
    assert lines["good-kl"][1:3] == ["ok", "mv2d-plugin-good"]
    assert lines["broken-obj"][1:3] == ["broken", "mv2d-plugin-broken"]
    assert lines["vsd"][1] == "broken"


# -- mv2d-plugin-plain: the contract without the Objective base class -----------------------------
def test_plain_plugin_never_imports_mv2d_bench():
    import ast

    import mv2d_plugin_plain

    tree = ast.parse(Path(mv2d_plugin_plain.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported == {"__future__", "torch"}  # neither Objective nor anything else of ours


def test_plain_plugins_are_listed_ok_and_incomplete_ones_broken_naming_the_part(
    listing, text_listing
):
    version = metadata.version("mv2d-plugin-plain")
    assert listing["plain-kl"] == {
        "name": "plain-kl",
        "distribution": "mv2d-plugin-plain",
        "version": version,
        "status": "ok",
        "error": None,
        "needs": ["fused_logits", "rep_logits"],
    }
    assert listing["plain-center"]["status"] == "ok"
    assert listing["plain-center"]["needs"] == []  # only needs_for(n_views)
    missing = {
        "plain-no-name": "missing attribute 'name' (a non-empty string)",
        "plain-no-needs": "missing attribute 'needs' (a set of ViewOutputs field names) or "
        "method 'needs_for(n_views)'",
        "plain-no-forward": "missing method 'forward(outputs) -> dict[str, Tensor]'",
    }
    for name, part in missing.items():
        row = listing[name]
        assert row["status"] == "broken" and row["distribution"] == "mv2d-plugin-plain"
        assert row["error"].endswith(f"from mv2d-plugin-plain {version}) is not usable: {part}")
    (line,) = [x for x in text_listing.splitlines() if x.startswith("plain-center ")]
    assert "ok" in line.split() and "depends on the number of views (needs_for)" in line


def test_plain_plugin_is_created_by_name_and_computes_its_kl():
    import torch

    from mv2d_bench import objectives
    from mv2d_bench.views import ViewOutputs

    obj = objectives.create("plain-kl", temperature=2.0, weight=0.5)
    assert isinstance(obj, torch.nn.Module) and not isinstance(obj, objectives.Objective)
    gen = torch.Generator().manual_seed(1)
    fused = torch.randn(6, 4, generator=gen, dtype=torch.float64) * 2
    views = [torch.randn(6, 4, generator=gen, dtype=torch.float64) * 2 for _ in range(2)]
    mask = torch.tensor([True, True, False, True, True, False])
    terms = obj(ViewOutputs(rep_logits=views, fused_logits=fused, mask=mask))
    log_p = _log_softmax(fused.numpy() / 2.0)
    expected = sum(
        (np.exp(log_p) * (log_p - _log_softmax(z.numpy() / 2.0))).sum(1)[mask.numpy()].mean()
        for z in views
    )
    assert terms["plain_kl"].item() == pytest.approx(0.5 * expected, rel=1e-6)
    with pytest.raises(TypeError, match="accepts: temperature=1.0, weight=1.0"):
        objectives.create("plain-kl", beta=1.0)


PLAIN_TINY = [
    "--set", "run.threads=1", "--set", "benchmark.samples=120", "--set", "benchmark.n_views=3",
    "--set", "benchmark.dims=6", "--set", "model.hidden=[16, 8]", "--set", "model.z_dim=4",
    "--set", "objective.weight=0.5",
]  # fmt: skip


@pytest.mark.parametrize("name", ["plain-kl", "plain-center"])
def test_plain_plugin_trains_one_step_through_the_trainer(name):
    import torch

    from mv2d_bench.config import load_config
    from mv2d_bench.harness.runner import make_task
    from mv2d_bench.harness.trainer import Trainer

    cfg = load_config(
        overrides=[a for a in PLAIN_TINY if a != "--set"]
        + ["run.benchmark=synthetic-mv", f"run.objective={name}", "train.progress=false"]
        + ["train.epochs=1"]
    )
    trainer = Trainer(make_task(cfg), cfg)
    trainer.build()
    batch = next(iter(trainer.task.train_batches(0, torch.Generator().manual_seed(0))))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    terms = trainer.train_step(batch)
    term = {"plain-kl": "obj/plain_kl", "plain-center": "obj/center"}[name]
    assert torch.isfinite(terms[term]) and terms[term].item() > 0
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, after, strict=True))
    expected = {"plain-kl": {"temperature": 1.0, "weight": 0.5}, "plain-center": {"weight": 0.5}}
    assert trainer.fit().objective_params == expected[name]


def test_a_run_with_a_plain_plugin_records_it(tmp_path):
    from mv2d_bench.leaderboards.records import check_record

    proc = _cli("run", "--benchmark", "synthetic-mv", "--objective", "plain-center", "--epochs",
                "1", "--no-progress", "--out", str(tmp_path), *PLAIN_TINY)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record_path = Path(proc.stdout.strip().splitlines()[-1])
    record = json.loads(record_path.read_text())
    assert check_record(record, str(record_path)) == []
    assert record["objective"] == {
        "name": "plain-center",
        "version": 1,
        "params": {"weight": 0.5},
        "distribution": "mv2d-plugin-plain",
        "distribution_version": metadata.version("mv2d-plugin-plain"),
    }
