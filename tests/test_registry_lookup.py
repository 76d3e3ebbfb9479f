"""Registry lookups that need no plugin installed: built-ins through the project's own entry
points, "did you mean", lazy loading, and how a broken or clashing entry is reported.

The tests with real plugin distributions are in test_registry_entrypoints.py (tox env
``plugins``); the last test here makes a throwaway distribution the way an installer lays one out
(a ``.dist-info`` folder on ``sys.path``) so that every env also covers the broken and clash
paths through the real metadata scan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from mv2d_bench.registry import (
    BrokenPluginError,
    ConflictError,
    Entry,
    Registry,
    UnknownNameError,
    registry,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
SEVEN = ("baseline", "vib", "cib", "vsd", "vcd", "vmd", "mv2d")
GROUP = "mv2d_bench.objectives"


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


CLASH = _installed("mv2d-plugin-clash")
needs_no_clash = pytest.mark.skipif(
    CLASH, reason="mv2d-plugin-clash is installed here: it claims 'vsd' on purpose"
)


def _declared() -> dict[str, dict[str, str]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    tables = data["project"]["entry-points"]
    kinds = ("objectives", "benchmarks", "protocols")
    return {kind: tables[f"mv2d_bench.{kind}"] for kind in kinds}


@pytest.mark.parametrize("kind", ["objectives", "benchmarks", "protocols"])
def test_builtins_come_from_this_projects_own_entry_points(kind):
    declared = _declared()[kind]
    reg = Registry(kind)
    version = metadata.version("mv2d-bench")
    assert declared, f"pyproject.toml declares no {kind}"
    for name, value in declared.items():
        entry = reg.entry(name)
        # the installed metadata says exactly what pyproject.toml says (no stale install)
        assert (entry.value, entry.distribution, entry.version) == (value, "mv2d-bench", version)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=needs_no_clash) if n == "vsd" else n for n in SEVEN]
)
def test_each_builtin_objective_loads_ok_as_an_objective_of_that_name(name):
    from mv2d_bench.objectives.base import Objective

    entry = Registry("objectives").entry(name)
    assert entry.status == "ok", entry.error
    assert entry.error is None
    cls = entry.load()
    assert issubclass(cls, Objective)
    assert cls.name == name


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("vds", "vsd"), ("MV2D", "mv2d"), ("vib2", "vib"), ("basline", "baseline")],
)
def test_unknown_name_suggests_the_closest(typed, expected):
    with pytest.raises(UnknownNameError) as info:
        registry("objectives").entry(typed)
    message = str(info.value)
    assert message.startswith(f"unknown objective {typed!r}; did you mean {expected!r}")
    assert isinstance(info.value, LookupError) and isinstance(info.value, KeyError)


def test_unknown_name_without_a_close_one_lists_the_known_names():
    with pytest.raises(UnknownNameError) as info:
        registry("benchmarks").entry("zzzzzzzz")
    message = str(info.value)
    assert "did you mean" not in message
    known = message.split("(known: ", 1)[1].rstrip(")").split(", ")
    assert known == Registry("benchmarks").names() == sorted(known)
    assert set(_declared()["benchmarks"]) <= set(known)


def test_unknown_registry_kind_is_a_value_error():
    with pytest.raises(ValueError, match="unknown registry kind 'objective'"):
        Registry("objective")


def test_scanning_imports_nothing_and_loading_imports_one_module():
    code = textwrap.dedent(
        """
        import json, sys
        from mv2d_bench.registry import registry
        reg = registry("objectives")
        names = reg.names()
        before = sorted(m for m in sys.modules if m.startswith("mv2d_bench.objectives"))
        reg.load("vib")
        after = sorted(m for m in sys.modules if m.startswith("mv2d_bench.objectives"))
        print(json.dumps({"names": names, "before": before, "after": after}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    out = json.loads(proc.stdout)
    assert set(SEVEN) <= set(out["names"])
    assert out["before"] == []
    assert "mv2d_bench.objectives.vib" in out["after"]
    assert "mv2d_bench.objectives.vsd" not in out["after"]  # only what was asked for


def _entry(value: str, **kw) -> Entry:
    ep = metadata.EntryPoint(name="x-obj", value=value, group=GROUP)
    return Entry(
        "x-obj", GROUP, value, "some-plugin", "1.2", [ep], base=Registry("objectives").base, **kw
    )


def test_entry_whose_module_fails_to_import_is_broken_with_its_error():
    entry = _entry("mv2d_no_such_module_xyz:Thing")
    assert entry.status == "broken"
    assert entry.error == (
        "objective 'x-obj' (mv2d_no_such_module_xyz:Thing, from some-plugin 1.2) failed to "
        "import: ModuleNotFoundError: No module named 'mv2d_no_such_module_xyz'"
    )
    with pytest.raises(BrokenPluginError, match="No module named 'mv2d_no_such_module_xyz'"):
        entry.load()
    assert entry.try_load() is None


def test_entry_that_is_not_an_objective_class_is_broken():
    entry = _entry("fractions:Fraction")
    assert entry.status == "broken"
    assert entry.error.startswith(
        "objective 'x-obj' (fractions:Fraction, from some-plugin 1.2) is not usable: expected a "
        "torch.nn.Module subclass, got Fraction (bases: numbers.Rational"
    )
    assert "an objective is a torch.nn.Module subclass with 'name'" in entry.error


def test_entry_claimed_twice_is_a_conflict_naming_both():
    entry = _entry("mv2d_bench.objectives.vib:VIB", conflict=["a-dist 1.0", "b-dist 2.0"])
    assert entry.status == "broken"
    with pytest.raises(ConflictError) as info:
        entry.load()
    assert str(info.value) == entry.error
    assert "'x-obj' is registered by more than one distribution: a-dist 1.0 and b-dist 2.0" in (
        entry.error
    )


def _write_dist(site: Path) -> None:
    """A distribution as an installer leaves it: a module and a .dist-info with entry points."""
    (site / "mv2d_tmp_plugin.py").write_text(
        "raise ImportError('mv2d_tmp_plugin cannot be imported (on purpose)')\n", encoding="utf-8"
    )
    info = site / "mv2d_tmp_plugin-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mv2d-tmp-plugin\nVersion: 0.3\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[mv2d_bench.objectives]\n"
        "tmp-broken = mv2d_tmp_plugin:Broken\n"
        "vib = mv2d_tmp_plugin:OtherVIB\n",
        encoding="utf-8",
    )


def test_metadata_scan_reports_a_broken_and_a_clashing_distribution(tmp_path):
    _write_dist(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mv2d_bench.cli", "objectives", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    broken = rows["tmp-broken"]
    assert (broken["status"], broken["distribution"], broken["version"]) == (
        "broken",
        "mv2d-tmp-plugin",
        "0.3",
    )
    assert "ImportError: mv2d_tmp_plugin cannot be imported (on purpose)" in broken["error"]
    version = metadata.version("mv2d-bench")
    assert rows["vib"]["status"] == "broken"
    assert f"mv2d-bench {version} and mv2d-tmp-plugin 0.3" in rows["vib"]["error"]
    for name in ("baseline", "vcd", "vmd", "mv2d", "cib") + (() if CLASH else ("vsd",)):
        assert rows[name]["status"] == "ok", rows[name]["error"]
