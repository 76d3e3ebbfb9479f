"""``mv2d-bench suite`` under faults: failing runs, unreadable records, two suites on one folder,
SIGKILL of the suite, Ctrl-C.

The faults come from a real objective plugin ("faulty"), installed for the test as a
distribution on ``sys.path`` (a module plus its ``.dist-info`` with the entry point), so the
suite's worker processes load it exactly as they load any third-party objective. Its ``mode``
parameter picks the fault; ``FAULTY_OFF=1`` (read in the worker) turns every fault off, the way a
user fixes a plugin and runs the suite again. Waits poll for a condition (a marker file, a
process gone) with a generous deadline; no assertion depends on timing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mv2d_bench.cli import main
from mv2d_bench.harness.checkpoints import load_checkpoint
from mv2d_bench.registry import registry

PLUGIN = '''\
"""An objective that fails on purpose (tests of the suite)."""
import os
import time

import torch
from torch import nn


class Faulty(nn.Module):
    name = "faulty"
    needs = frozenset({"rep_logits"})

    def __init__(self, mode: str = "ok", after: int = 0):
        super().__init__()
        self.mode, self.after, self.calls = mode, after, 0

    def forward(self, outputs):
        self.calls += 1
        if self.training and self.calls > self.after and not os.environ.get("FAULTY_OFF"):
            markers = os.environ.get("FAULTY_MARKERS")
            if markers:
                with open(os.path.join(markers, str(os.getpid())), "w") as f:
                    f.write(self.mode)
            if self.mode == "zerodiv":
                return {"x": torch.tensor(1 / 0)}
            if self.mode == "exit":
                raise SystemExit(4)
            if self.mode == "hard-exit":
                os._exit(3)
            if self.mode == "block":
                time.sleep(3600)
        return {"zero": outputs.rep_logits[0].sum() * 0.0}
'''

SUITE_HEAD = """
[suite]
name = "faults"
benchmarks = [
  {{ name = "synthetic-mv", set = {{ "benchmark.samples" = 200, "benchmark.n_views" = 2 }} }},
]
seeds = {seeds}

[suite.set]
"train.epochs" = 2
"train.progress" = false
"run.threads" = 1
"model.hidden" = [16, 8]
"model.z_dim" = 4
"model.bottleneck_hidden" = 4
"model.relation_rank" = 4
"model.classifier_hidden" = 8
"""

SETTING = """
[[setting]]
name = "{name}"
objective = "{objective}"
{extra}
"""

DEADLINE = 240.0  # seconds to wait for a condition before the test fails (not a timing claim)


def setting(name: str, objective: str = "faulty", **params) -> str:
    items = ", ".join(f'"objective.{k}" = {json.dumps(v)}' for k, v in params.items())
    return SETTING.format(
        name=name, objective=objective, extra=f"set = {{ {items} }}" if params else ""
    )


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The "faulty" objective installed as a distribution on sys.path (and PYTHONPATH)."""
    site = tmp_path / "site"
    dist = site / "faulty_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "faulty_plugin.py").write_text(PLUGIN)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[mv2d_bench.objectives]\nfaulty = faulty_plugin:Faulty\n"
    )
    sys.path.insert(0, str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("FAULTY_OFF", raising=False)
    registry("objectives").refresh()
    yield site
    sys.path.remove(str(site))
    sys.modules.pop("faulty_plugin", None)
    registry("objectives").refresh()


def write_suite(tmp_path: Path, seeds: list[int], *settings: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(SUITE_HEAD.format(seeds=seeds) + "".join(settings))
    return path


def records(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.json") if not p.name.endswith(".failed.json"))


def failures(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.failed.json"))]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mv2d_bench", *args]


# -- a failing run ---------------------------------------------------------------------------------
def test_failing_runs_leave_failure_records_and_a_rerun_redoes_only_them(
    plugin, tmp_path, capsys, monkeypatch
):
    suite = write_suite(
        tmp_path,
        [0],
        setting("ok", "vib"),
        setting("zerodiv", mode="zerodiv"),
        setting("exit", mode="exit"),
        setting("hard-exit", mode="hard-exit"),
    )
    out = tmp_path / "runs"
    assert main(["suite", str(suite), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    # the other runs went on: the good one is recorded, each bad one has its failure record
    assert [json.loads(p.read_text())["objective"]["name"] for p in records(out)] == ["vib"]
    errors = {f["setting"]: f for f in failures(out)}
    assert sorted(errors) == ["exit", "hard-exit", "zerodiv"]
    assert errors["zerodiv"]["error"] == "ZeroDivisionError: division by zero"
    assert errors["exit"]["error"] == "SystemExit: 4"
    assert (
        errors["hard-exit"]["error"].startswith("WorkerDied: ")
        and "exit status 3" in (errors["hard-exit"]["error"])
    )
    assert all(
        f["attempts"] == 1 and f["kind"] == "mv2d-bench/run-failure" for f in errors.values()
    )
    log = (out / errors["zerodiv"]["log"]).read_text()
    assert "Traceback (most recent call last)" in log and "faulty_plugin.py" in log
    assert "ZeroDivisionError: division by zero" in log
    # the summary names every failed run and its failure record
    assert "3 run(s) failed" in text
    for name in ("zerodiv", "exit", "hard-exit"):
        assert re.search(rf"^  synthetic-mv/{name} seed 0: .*failure record .*\.failed\.json\)$",
                         text, re.M)  # fmt: skip
    assert not list((out / "locks").glob("*.lock"))
    good = records(out)[0]
    stamp = (good.stat().st_mtime_ns, good.read_bytes())

    # the same command again: only the three failed runs run (and fail again)
    assert main(["suite", str(suite), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "4 runs planned, 1 already recorded" in text and "3 to run (3 failed before)" in text
    assert not re.search(r"^done ", text, re.M)
    assert len(re.findall(r"^failed ", text, re.M)) == 3
    assert sorted(f["attempts"] for f in failures(out)) == [2, 2, 2]

    # the plugin fixed: the failed runs succeed, their failure records go, nothing else reruns
    monkeypatch.setenv("FAULTY_OFF", "1")
    assert main(["suite", str(suite), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert len(re.findall(r"^done synthetic-mv/(zerodiv|exit|hard-exit) seed 0: ", text, re.M)) == 3
    assert not re.search(r"^(done|failed) synthetic-mv/ok", text, re.M)
    assert failures(out) == [] and len(records(out)) == 4
    assert (good.stat().st_mtime_ns, good.read_bytes()) == stamp


def test_unreadable_and_edited_records_are_named_moved_aside_and_redone(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("FAULTY_OFF", raising=False)
    suite = write_suite(tmp_path, [0, 1], setting("vib", "vib"))
    out = tmp_path / "runs"
    assert main(["suite", str(suite), "--out", str(out)]) == 0
    first, second = records(out)
    truncated = first.read_bytes()[:100]
    first.write_bytes(truncated)
    edited = json.loads(second.read_text())
    edited["metrics"]["accuracy"] = 99.9  # a hand edit: the run_id no longer matches
    second.write_text(json.dumps(edited))
    capsys.readouterr()
    # a dry run only reports them
    assert main(["suite", str(suite), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would be moved aside and its run redone") == 2
    assert first.read_bytes() == truncated and json.loads(second.read_text()) == edited
    assert main(["suite", str(suite), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"warning: {first}: not valid JSON" in text
    assert f"warning: {second}: its run_id does not match its content" in text
    assert "2 runs planned, 0 already recorded" in text and text.count("moved aside") == 2
    # kept, not deleted: the bad files are beside the new records, byte for byte
    assert first.with_name(first.name + ".unreadable").read_bytes() == truncated
    assert json.loads(second.with_name(second.name + ".unreadable").read_text()) == edited
    assert len(records(out)) == 2 and len(re.findall(r"^done ", text, re.M)) == 2


# -- two suites on one folder ----------------------------------------------------------------------
@pytest.mark.parametrize("start", ["together", "staggered"])
def test_two_suites_on_one_folder_run_each_run_exactly_once(tmp_path, start):
    suite = write_suite(tmp_path, [0, 1, 2, 3], setting("vib", "vib"))
    out = tmp_path / "runs"
    args = cli("suite", str(suite), "--out", str(out))
    a = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if start == "staggered":  # b starts once a holds its first claim
        wait_for(lambda: any((out / "locks").glob("*.lock")) or a.poll() is not None, "a claim")
    b = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [p.communicate(timeout=DEADLINE)[0] for p in (a, b)]
    assert [a.returncode, b.returncode] == [0, 0], outputs
    ran = [
        m
        for o in outputs
        for m in re.findall(r"^done (synthetic-mv/vib seed \d): accuracy", o, re.M)
    ]
    assert sorted(ran) == [f"synthetic-mv/vib seed {s}" for s in range(4)], outputs  # once each
    recs = [json.loads(p.read_text()) for p in records(out)]
    assert sorted(r["seed"] for r in recs) == [0, 1, 2, 3]
    for o in outputs:  # each suite accounts for every run: recorded before, by it or the other
        before = int(re.search(r"4 runs planned, (\d) already recorded", o).group(1))
        assert before + len(re.findall(r"^done synthetic-mv/vib seed \d", o, re.M)) == 4, o
    assert not list((out / "locks").glob("*"))


# -- SIGKILL of the suite, Ctrl-C ------------------------------------------------------------------
def start_blocking_suite(tmp_path, jobs: int):
    """A suite whose runs block in their second epoch (after the first epoch's checkpoint)."""
    suite = write_suite(tmp_path, [0, 1], setting("block", mode="block", after=2))
    out = tmp_path / "runs"
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "FAULTY_MARKERS": str(markers)}
    proc = subprocess.Popen(
        cli("suite", str(suite), "--out", str(out), "--jobs", str(jobs)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    wait_for(
        lambda: len(list(markers.iterdir())) >= jobs or proc.poll() is not None, "blocked runs"
    )
    assert proc.poll() is None, proc.communicate()
    workers = [int(p.name) for p in markers.iterdir()]
    return suite, out, proc, workers


def test_sigkill_of_the_suite_leaves_no_worker_and_the_next_suite_takes_over(
    plugin, tmp_path, capsys, monkeypatch
):
    suite, out, proc, workers = start_blocking_suite(tmp_path, jobs=2)
    assert len(workers) == 2 and all(alive(w) for w in workers)
    # a dry run meanwhile sees both runs claimed by the live suite
    assert main(["suite", str(suite), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count(f"running (pid {proc.pid} on ") == 2
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=DEADLINE)
    wait_for(lambda: not any(alive(w) for w in workers), "the workers to die with the suite")
    # the dead suite's claims are stale: the next suite takes them over and resumes the runs
    # from their first-epoch checkpoints
    assert len(list((out / "checkpoints").glob("*.pt"))) == 2
    monkeypatch.setenv("FAULTY_OFF", "1")
    assert main(["suite", str(suite), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count(f"its claim by pid {proc.pid} on ") == 2 and text.count("is stale") == 2
    assert len(records(out)) == 2
    for log in (out / "logs").glob("*.jsonl"):  # each run resumed from its checkpoint
        assert any(json.loads(line)["event"] == "resume" for line in log.read_text().splitlines())
    assert not list((out / "checkpoints").glob("*")) and not list((out / "locks").glob("*"))


def test_ctrl_c_stops_the_suite_with_one_line_and_keeps_the_checkpoint(plugin, tmp_path):
    suite, out, proc, workers = start_blocking_suite(tmp_path, jobs=1)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    stdout, stderr = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130
    assert stderr.strip().splitlines() == [
        "mv2d-bench: interrupted: 0 run(s) finished, 1 stopped (their checkpoints are kept), "
        f"1 not started; re-run the same command to resume (records in {out})"
    ]
    assert "Traceback" not in stdout + stderr
    wait_for(lambda: not any(alive(w) for w in workers), "the worker to stop")
    assert records(out) == [] and failures(out) == []
    assert not list((out / "locks").glob("*"))
    (ckpt,) = (out / "checkpoints").glob("*.pt")
    assert not list((out / "checkpoints").glob(".*.tmp"))
    assert load_checkpoint(ckpt)["epoch"] == 1  # the first epoch's state, intact
