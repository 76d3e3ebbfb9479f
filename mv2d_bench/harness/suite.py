"""Suites: benchmarks x settings x seeds, described in TOML, run with skipping and a summary.

A suite file::

    [suite]
    name = "paper-mvc"
    config = "../paper/mvc.toml"        # base run configuration, relative to this file
    benchmarks = ["hand", "reuters"]    # or tables: {name = "hand", root = "...", set = {...}}
    seeds = [0, 1, 2, 3, 4]
    splits = "card"                     # optional: every run on each split seed (data.split_seed)
    objectives = ["vib", "mv2d"]        # shorthand: one setting per objective, no overrides
    set = {"train.epochs" = 160}        # optional overrides for every run

    [[setting]]                         # or explicit settings (rows of the summary table)
    name = "no bottleneck"
    objective = "baseline"
    set = {"model.bottleneck" = false}  # "table.key" = value, typed TOML values

A setting pairs an objective with configuration overrides (the model switches of the paper's
ablations), so "bottleneck alone" and "no bottleneck" can both use the ``baseline`` objective.
Precedence per run: base config < suite ``set`` < benchmark ``set`` < setting ``set`` < the
command line's ``--set``.

``splits`` (optional) runs every benchmark x setting x seed once per split seed: ``"card"``
takes each benchmark's split seeds from its data card (the five of mvc/accuracy@2, MvNNcor's
seed first where it has one), a list of integers names them; each becomes
``data.split_seed`` of its runs (a benchmark's own ``set`` may not also set it).

A run is skipped when ``--out`` already holds a record of the same benchmark, objective,
resolved configuration (volatile keys such as the data root and thread count excluded) and
seed - matched on those fields, never on file names (:mod:`~mv2d_bench.harness.suite_out`).
Running them (claims, workers, failures, Ctrl-C) is :mod:`~mv2d_bench.harness.suite_exec`.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mv2d_bench.config import (
    MAX_SEED,
    ConfigError,
    RunConfig,
    load_config,
    read_toml,
)

SUITE_KEYS = {"name", "config", "benchmarks", "seeds", "splits", "objectives", "set"}
SETTING_KEYS = {"name", "objective", "set"}
BENCH_KEYS = {"name", "root", "set"}


@dataclass
class Setting:
    name: str
    objective: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class SuiteBenchmark:
    name: str
    root: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    split_seed: int | None = None
    """Set when the suite's ``splits`` expanded this benchmark (also in ``overrides``)."""


@dataclass
class Suite:
    path: Path
    name: str
    base_config: Path | None
    benchmarks: list[SuiteBenchmark]
    settings: list[Setting]
    seeds: list[int]
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlannedRun:
    benchmark: str
    setting: str
    seed: int
    config: RunConfig
    key: str
    split_seed: int | None = None


def _overrides(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'set' must be a table of \"table.key\" = value")
    out = {}
    for k, v in value.items():
        if isinstance(v, dict):  # TOML dotted keys (set.model.bottleneck = false) nest
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    for k in out:
        if k.count(".") != 1:
            raise ConfigError(f"{where}: key {k!r} in 'set' must be table.key (e.g. train.lr)")
    return out


def _unknown(d: dict[str, Any], allowed: set[str], where: str) -> None:
    bad = sorted(set(d) - allowed)
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; expected among {sorted(allowed)}")


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    raw = read_toml(path, "suite file")
    _unknown(raw, {"suite", "setting"}, str(path))
    s = raw.get("suite")
    if not isinstance(s, dict):
        raise ConfigError(f"{path}: missing table [suite] (benchmarks, seeds, settings)")
    _unknown(s, SUITE_KEYS, f"{path}: [suite]")
    benches = []
    for i, b in enumerate(s.get("benchmarks") or []):
        where = f"{path}: suite.benchmarks[{i}]"
        if isinstance(b, str):
            benches.append(SuiteBenchmark(b))
        elif isinstance(b, dict) and isinstance(b.get("name"), str):
            _unknown(b, BENCH_KEYS, where)
            benches.append(
                SuiteBenchmark(b["name"], b.get("root"), _overrides(b.get("set"), where))
            )
        else:
            raise ConfigError(f"{where}: expected a name or a table with 'name'; got {b!r}")
    if not benches:
        raise ConfigError(f"{path}: 'suite.benchmarks' must list at least one benchmark")
    if "splits" in s:
        benches = _expand_splits(benches, s["splits"], path)
    seeds = s.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_SEED for x in seeds
        )
        or len(set(seeds)) != len(seeds)
    ):
        raise ConfigError(
            f"{path}: 'suite.seeds' must be a non-empty list of distinct integers in "
            f"0..2**63-1; got {seeds!r}"
        )
    settings = []
    for i, st in enumerate(raw.get("setting") or []):
        where = f"{path}: setting[{i}]"
        if not isinstance(st, dict) or not isinstance(st.get("objective"), str):
            raise ConfigError(f"{where}: expected a table with 'objective' (and 'name', 'set')")
        _unknown(st, SETTING_KEYS, where)
        settings.append(
            Setting(
                str(st.get("name", st["objective"])),
                st["objective"],
                _overrides(st.get("set"), where),
            )
        )
    for obj in s.get("objectives") or []:
        if not isinstance(obj, str):
            raise ConfigError(f"{path}: 'suite.objectives' must be a list of names; got {obj!r}")
        settings.append(Setting(obj, obj))
    if not settings:
        raise ConfigError(f"{path}: no settings: give 'suite.objectives' or [[setting]] tables")
    names = [st.name for st in settings]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: setting names must be unique; repeated: {dupes}")
    base = s.get("config")
    return Suite(
        path=path,
        name=str(s.get("name", path.stem)),
        base_config=(path.parent / base) if base else None,
        benchmarks=benches,
        settings=settings,
        seeds=[int(x) for x in seeds],
        overrides=_overrides(s.get("set"), f"{path}: [suite]"),
    )


def _expand_splits(benches: list[SuiteBenchmark], splits: Any, path: Path) -> list:
    """One copy of every benchmark per split seed (``splits``: "card" or a list of ints)."""
    from mv2d_bench import loaders

    ok_list = (
        isinstance(splits, list)
        and splits
        and all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_SEED for x in splits
        )
    )
    if splits != "card" and not (ok_list and len(set(splits)) == len(splits)):
        raise ConfigError(
            f"{path}: 'suite.splits' must be \"card\" (each benchmark's data-card split seeds) "
            f"or a non-empty list of distinct integers; got {splits!r}"
        )
    out = []
    for b in benches:
        if "data.split_seed" in b.overrides:
            raise ConfigError(
                f"{path}: benchmark {b.name!r} sets data.split_seed, but 'suite.splits' decides "
                "the split seeds; remove one of them"
            )
        if splits == "card":
            try:
                seeds = loaders.get(b.name).split_seeds()
            except AttributeError:
                raise ConfigError(
                    f"{path}: 'suite.splits' = \"card\": benchmark {b.name!r} has no data-card "
                    "split seeds (only multi-view classification benchmarks have)"
                ) from None
        else:
            seeds = splits
        for seed in seeds:
            over = {**b.overrides, "data.split_seed": int(seed)}
            out.append(SuiteBenchmark(b.name, b.root, over, int(seed)))
    return out


def _items(d: dict[str, Any], source: str) -> list[tuple[str, str]]:
    """``set`` entries as overrides that name where they were written."""
    return [(f"{k}={json.dumps(v)}", source) for k, v in d.items()]


def plan_config(
    suite: Suite,
    bench: SuiteBenchmark,
    setting: Setting,
    seed: int,
    cli_overrides: list[str] | None = None,
) -> RunConfig:
    overrides = (
        _items(suite.overrides, f"{suite.path}: [suite] set")
        + _items(bench.overrides, f"{suite.path}: benchmark {bench.name!r} set")
        + _items(setting.overrides, f"{suite.path}: setting {setting.name!r} set")
    )
    cli = {"run": {"benchmark": bench.name, "objective": setting.objective, "seed": seed}}
    if bench.root:
        root = Path(bench.root)
        cli["run"]["root"] = str(root if root.is_absolute() else suite.path.parent / root)
    # the suite decides benchmark/objective/seed; everything else may come from --set
    return load_config(suite.base_config, overrides=overrides + list(cli_overrides or []), cli=cli)


def summarize(
    records: list[tuple[str, str, dict[str, Any]]], metric: str = "accuracy"
) -> list[dict[str, Any]]:
    """Rows (benchmark, setting) with mean, sample std and n of ``metric`` over seeds."""
    groups: dict[tuple[str, str], list[float]] = {}
    for bench, setting, rec in records:
        value = rec.get("metrics", {}).get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            groups.setdefault((bench, setting), []).append(float(value))
    rows = []
    for (bench, setting), values in groups.items():
        rows.append(
            {
                "benchmark": bench,
                "setting": setting,
                "n": len(values),
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], settings: list[str], metric: str) -> str:
    """Benchmarks as rows, settings as columns: 'mean ± std (n)'."""
    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    cell = {(r["benchmark"], r["setting"]): r for r in rows}
    header = [f"{metric} (mean ± std, n)"] + settings
    lines = [header]
    for b in benches:
        line = [b]
        for s in settings:
            r = cell.get((b, s))
            line.append(f"{r['mean']:.2f} ± {r['std']:.2f} ({r['n']})" if r else "-")
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
