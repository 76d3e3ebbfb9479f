"""``mv2d-bench --version`` and ``mv2d-bench objectives list|show``: the JSON contract, the text
views, and the one-line errors (exit status 2) for unknown names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from mv2d_bench import cli
from mv2d_bench.registry import registry

SEVEN = ("baseline", "vib", "cib", "vsd", "vcd", "vmd", "mv2d")
KEYS = ["name", "distribution", "version", "status", "error", "needs"]
VERSION = metadata.version("mv2d-bench")


def _clash_installed() -> bool:
    try:
        metadata.distribution("mv2d-plugin-clash")
    except metadata.PackageNotFoundError:
        return False
    return True


needs_vsd = pytest.mark.skipif(
    _clash_installed(), reason="mv2d-plugin-clash is installed here: it claims 'vsd' on purpose"
)


def _script() -> list[str]:
    script = Path(sys.executable).with_name("mv2d-bench")
    if script.exists():
        return [str(script)]
    found = shutil.which("mv2d-bench")
    return [found] if found else [sys.executable, "-m", "mv2d_bench.cli"]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_DATASETS_OFFLINE="1")
    return subprocess.run(
        _script() + list(args), capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_version_of_the_installed_console_script():
    proc = _run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"mv2d-bench {VERSION}"


def test_version_through_main(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mv2d-bench {VERSION}"


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: mv2d-bench")
    assert "objectives" in out


def _listing(capsys) -> list[dict]:
    assert cli.main(["objectives", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_json_rows_have_exactly_the_contract_keys(capsys):
    rows = _listing(capsys)
    assert rows, "no objectives listed"
    for row in rows:
        assert list(row) == KEYS
        assert row["status"] in ("ok", "broken")
        assert isinstance(row["needs"], list) and row["needs"] == sorted(row["needs"])
        if row["status"] == "ok":
            assert row["error"] is None
        else:
            assert isinstance(row["error"], str) and row["error"]
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)


def test_list_json_has_the_seven_builtins_from_mv2d_bench(capsys):
    rows = {r["name"]: r for r in _listing(capsys)}
    assert set(SEVEN) <= set(rows)
    for name in SEVEN:
        assert rows[name]["distribution"] == "mv2d-bench"
        assert rows[name]["version"] == VERSION
        if name == "vsd" and _clash_installed():
            continue
        assert rows[name]["status"] == "ok", rows[name]["error"]
        # "needs" is the objective class's own declaration
        assert rows[name]["needs"] == sorted(registry("objectives").load(name).needs)
    # fields that follow from the formulas: VIB reads the Gaussian, VSD the two class heads
    assert rows["vib"]["needs"] == ["rep_mean", "rep_std"]
    assert rows["baseline"]["needs"] == []
    if not _clash_installed():
        assert rows["vsd"]["needs"] == ["obs_logits", "rep_logits"]


def test_list_json_from_the_console_script_matches_main(capsys):
    proc = _run("objectives", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == _listing(capsys)


def test_list_text_has_one_line_per_objective(capsys):
    rows = _listing(capsys)
    assert cli.main(["objectives", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        parts = line.split()
        assert parts[:4] == [row["name"], row["status"], row["distribution"], row["version"]]


@needs_vsd
def test_show_vsd_prints_formula_parameters_defaults_and_distribution(capsys):
    cls = registry("objectives").load("vsd")
    assert cli.main(["objectives", "show", "vsd"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"vsd  (from mv2d-bench {VERSION})"
    assert f"  formula:    {cls.formula}\n" in out
    assert "KL(P_vi || P_zi)" in cls.formula
    for key, default in {"weight": 1.0, "temperature": 1.0, "detach_teacher": True}.items():
        assert f"    {key} = {default!r}\n" in out
    assert "  needs:      obs_logits, rep_logits\n" in out


@needs_vsd
def test_show_vsd_json(capsys):
    cls = registry("objectives").load("vsd")
    assert cli.main(["objectives", "show", "vsd", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "vsd"
    assert (info["distribution"], info["version"], info["status"]) == ("mv2d-bench", VERSION, "ok")
    assert info["formula"] == cls.formula
    assert info["parameters"] == cls.parameters_doc()
    assert info["parameters"] == {"weight": 1.0, "temperature": 1.0, "detach_teacher": True}
    assert info["doc"].startswith(cls.__doc__.strip().splitlines()[0])


def test_show_unknown_name_exits_2_with_did_you_mean(capsys):
    assert cli.main(["objectives", "show", "vds"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert err.startswith("mv2d-bench: error: unknown objective 'vds'; did you mean 'vsd'")


def test_show_unknown_name_from_the_console_script():
    proc = _run("objectives", "show", "mv2")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "did you mean 'mv2d'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_objectives_without_action_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["objectives"])
    assert info.value.code == 2
    assert "list" in capsys.readouterr().err
