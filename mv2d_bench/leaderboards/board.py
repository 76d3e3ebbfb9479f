"""Build a leaderboard (JSON, ``schemas/leaderboard.schema.json``) from run records.

Records are grouped into entries by what ran (see the records module docstring): benchmark name,
version and data sha256; protocol id; objective name, version, params and distribution; model
name and params; the config without its volatile keys; and the split. Records under different
protocol versions or splits are never averaged together: they land in different entries -
except under a protocol whose entries span several splits (``required_splits > 1``,
mvc/accuracy@2: the data card's 5 split seeds x 2 training seeds), where one entry holds the
runs of every split and ``data.split_seed`` is left out of the grouping config.

Each entry reports per metric the mean and the sample standard deviation (ddof=1, null when
n < 2) with n and every value: over its runs (one record each), or for protocols whose trials are
separate runs (RegDB) over its trials, each trial the mean of its runs. An entry with fewer runs
(seeds) or trials than its protocol requires is marked incomplete and not ranked. Complete
entries are ranked per board (one board per benchmark and protocol) by the protocol's primary
metric in its direction; equal means share a rank (1, 2, 2, 4). Reference rows from papers are
added with ``"measured": false``.

Boards of protocols with ``statistics = "paired"`` also report per metric a 95 % confidence
interval (``ci95``) and per entry its paired difference to the best entry (``paired``), and rank
by the paired test (:mod:`mv2d_bench.leaderboards.paired`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mv2d_bench.config import canonical_config
from mv2d_bench.leaderboards import paired
from mv2d_bench.leaderboards.records import (
    canonical_json,
    find_records,
    git_revision,
    now_iso,
    read_record,
    strip_volatile,
)
from mv2d_bench.leaderboards.schema import Violation

KIND = "mv2d-bench/leaderboard"
REFERENCE_KIND = "mv2d-bench/reference-rows"
MEAN_DOC = (
    "arithmetic mean over the entry's runs (one record each); for protocols whose trials are "
    "separate runs (trial_scope 'split'), over its trials, each the mean of that trial's runs"
)
STD_DOC = (
    "sample standard deviation (ddof=1, the n-1 denominator) over the same values as the mean; "
    "null when n < 2"
)


class BuildError(ValueError):
    """Records that cannot be aggregated; ``violations`` lists every problem found."""

    def __init__(self, violations: Sequence[Violation]):
        self.violations = list(violations)
        lines = "\n  ".join(str(v) for v in self.violations)
        n = len(self.violations)
        super().__init__(f"cannot build the leaderboard ({n} problem(s)):\n  {lines}")


@dataclass
class Loaded:
    """A record (or reference file) and the file it came from."""

    path: Path | None
    data: dict[str, Any]

    @property
    def file(self) -> str:
        return str(self.path) if self.path else "<memory>"


def load_records(paths: Iterable[str | os.PathLike]) -> list[Loaded]:
    return [Loaded(p, read_record(p)) for p in find_records(paths)]


def group_key(record: dict[str, Any]) -> dict[str, Any]:
    """What must agree for two records to be averaged (everything but the seed and the split).
    SYSU-MM01 records also carry where their galleries came from (``protocol_gallery``: the
    official permutation file, by sha256, or the seeds): records of different gallery sources
    are never averaged (records without it, e.g. MVC, keep their key unchanged)."""
    b, o, m = record["benchmark"], record["objective"], record["model"]
    key = {
        "benchmark": {"name": b["name"], "version": b["version"], "data_sha256": b["data_sha256"]},
        "protocol": record["protocol"],
        "objective": {
            "name": o["name"],
            "version": o["version"],
            "params": o["params"],
            "distribution": o["distribution"],
        },
        "model": {"name": m["name"], "params": m["params"]},
        "config": strip_volatile(canonical_config(record["config"])),
    }
    if _multi_split(record.get("protocol")) and isinstance(key["config"].get("data"), dict):
        key["config"]["data"].pop("split_seed", None)  # one entry spans the protocol's splits
    if record.get("protocol_gallery") is not None:
        key["protocol_gallery"] = record["protocol_gallery"]
    return key


def split_of(record: dict[str, Any]) -> tuple[Any, str, str]:
    b = record["benchmark"]
    return (b.get("trial"), b["split_id"], b["split_sha256"])


def short_hash(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def _protocol(pid: str):
    from mv2d_bench.leaderboards.protocols import get

    return get(pid)


def _multi_split(pid: Any) -> bool:
    """True for a protocol whose entries span several splits (mvc/accuracy@2)."""
    try:
        return getattr(_protocol(pid), "required_splits", 1) > 1
    except (LookupError, ValueError, TypeError, AttributeError, ImportError):
        return False


def _paired(protocol) -> bool:
    return getattr(protocol, "statistics", "mean-std") == "paired"


def _compact(nums: Sequence[int]) -> str:
    return ", ".join(str(n) for n in nums) if len(nums) <= 4 else f"{nums[0]}..{nums[-1]}"


def completeness(protocol, runs: Sequence[dict[str, Any]]) -> tuple[bool, str | None]:
    """(complete, why not) for an entry's runs (dicts with "seed" and "trial"): it needs
    ``required_seeds`` distinct (seed, trial) runs and a run of every ``required_trials``."""
    need = protocol.required_seeds
    if getattr(protocol, "required_splits", 1) > 1:
        return _grid_completeness(protocol, runs)
    pairs = {(r["seed"], r["trial"]) for r in runs}
    why = []
    if len(pairs) < need:
        what = "seeds" if protocol.trial_scope == "run" else "runs"
        why.append(f"{len(pairs)} of {need} required {what}")
    if protocol.required_trials:
        missing = sorted(set(protocol.required_trials) - {r["trial"] for r in runs})
        if missing:
            why.append(
                f"trial(s) {_compact(missing)} of {len(protocol.required_trials)} have no run"
            )
    return (not why), ("; ".join(why) or None)


def _grid_completeness(protocol, runs: Sequence[dict[str, Any]]) -> tuple[bool, str | None]:
    """Multi-split protocols: ``required_splits`` splits, each run with the same >=
    ``required_seeds`` training seeds (the grid the paired statistics compare)."""
    by_split: dict[str, set] = defaultdict(set)
    for r in runs:
        by_split[r["split_id"]].add(r["seed"])
    why = []
    if len(by_split) < protocol.required_splits:
        why.append(f"{len(by_split)} of {protocol.required_splits} required splits")
    short = sorted(s for s, seeds in by_split.items() if len(seeds) < protocol.required_seeds)
    if short:
        why.append(f"split(s) {', '.join(short)} have fewer than {protocol.required_seeds} seeds")
    seed_sets = {frozenset(v) for v in by_split.values()}
    if len(seed_sets) > 1:
        why.append("the splits were not run with the same training seeds")
    return (not why), ("; ".join(why) or None)


def stats(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size >= 2 else None,
        "n": int(arr.size),
        "values": [float(v) for v in arr],
    }


def entry_values(protocol, runs: Sequence[dict[str, Any]], metric: str) -> list[float]:
    """The values an entry's statistic is taken over: one per run (in run order), or for split
    trials one per trial (the mean of that trial's runs, in trial order)."""
    if protocol.trial_scope != "split":
        return [float(r["metrics"][metric]) for r in runs]
    by_trial: dict[Any, list[float]] = defaultdict(list)
    for r in runs:
        by_trial[r["trial"]].append(float(r["metrics"][metric]))
    return [float(np.mean(by_trial[t])) for t in sorted(by_trial, key=lambda t: (t is None, t))]


def split_trials(protocol, runs: Sequence[dict[str, Any]], metrics: dict) -> list[dict]:
    """Split-trial protocols (RegDB): each trial's values (the mean of its runs, in trial order)
    beside the entry's mean over the trials: ``[{"trial", "runs", "metrics"}]``."""
    by_trial: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by_trial[r["trial"]].append(r)
    out = []
    for t in sorted(by_trial, key=lambda t: (t is None, t)):
        rs = by_trial[t]
        out.append(
            {
                "trial": t,
                "runs": len(rs),
                "metrics": {
                    name: float(np.mean([float(r["metrics"][name]) for r in rs]))
                    for name in metrics
                },
            }
        )
    return out


def competition_ranks(means: Sequence[float], direction: str) -> list[int]:
    """Rank of each mean (1 = best; equal means share the better rank: 1, 2, 2, 4)."""
    sign = -1.0 if direction == "max" else 1.0
    keys = [sign * m for m in means]
    return [1 + sum(k2 < k for k2 in keys) for k in keys]


def _relpath(path: Path | None, base: Path | None) -> str | None:
    if path is None:
        return None
    if base is None:
        return str(path)
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def _make_entry(protocol, items: list[Loaded], splits, base: Path | None) -> dict[str, Any]:
    first = items[0].data
    key = group_key(first)
    items = sorted(
        items,
        key=lambda x: (
            x.data["benchmark"]["split_id"] if protocol.required_splits > 1 else "",
            x.data["seed"],
            x.data["benchmark"].get("trial") or 0,
        ),
    )
    runs = []
    for it in items:
        r = it.data
        run = {
            "run_id": r["run_id"],
            "seed": r["seed"],
            "trial": r["benchmark"].get("trial"),
            "protocol": r["protocol"],
            "split_id": r["benchmark"]["split_id"],
            "split_sha256": r["benchmark"]["split_sha256"],
            "created": r["created"],
            "package_version": r["environment"]["package_version"],
            "git_revision": r["environment"]["git_revision"],
            "record": _relpath(it.path, base),
            "metrics": {
                m.name: r["metrics"][m.name] for m in protocol.metrics if m.name in r["metrics"]
            },
        }
        arts = r.get("artifacts") or {}
        if arts and it.path is not None:
            run["artifacts"] = {k: _relpath(it.path.parent / v, base) for k, v in arts.items()}
        elif arts:
            run["artifacts"] = dict(arts)
        runs.append(run)
    complete, why = completeness(protocol, runs)
    # a metric added to a protocol after some runs were recorded (Metric.optional) is reported
    # only when every run has it
    metrics = {
        m.name: stats(entry_values(protocol, runs, m.name))
        for m in protocol.metrics
        if all(m.name in r["metrics"] for r in runs)
    }
    if _paired(protocol):
        for stat in metrics.values():
            stat["ci95"] = paired.ci95(stat["values"])
    cost = {
        k: float(np.mean([it.data["cost"][k] for it in items]))
        for k in ("train_seconds", "eval_seconds", "steps_per_second")
    }
    split_list = [{"trial": t, "id": i, "sha256": s} for (t, i, s) in sorted(splits, key=str)]
    trial_count = (
        len({r["trial"] for r in runs}) if protocol.trial_scope == "split" else protocol.trials
    )
    return {
        "measured": True,
        "key": short_hash({"group": key, "splits": split_list}),
        "label": first["objective"]["name"],
        "rank": None,
        "complete": complete,
        "incomplete_reason": why,
        "objective": {
            "name": first["objective"]["name"],
            "version": first["objective"]["version"],
            "params": first["objective"]["params"],
            "distribution": first["objective"]["distribution"],
        },
        "model": {
            "name": first["model"]["name"],
            "params": first["model"]["params"],
            "param_count": first["model"]["param_count"],
        },
        "config": key["config"],
        **({"protocol_gallery": key["protocol_gallery"]} if "protocol_gallery" in key else {}),
        "data_sha256": first["benchmark"]["data_sha256"],
        "splits": split_list,
        "n": len(runs),
        "seeds": sorted({r["seed"] for r in runs}),
        "trials": trial_count,
        "metrics": metrics,
        "cost": cost,
        "runs": runs,
        **(
            {"per_trial": split_trials(protocol, runs, metrics)}
            if protocol.trial_scope == "split"
            else {}
        ),
    }


def _partition_by_split(protocol, items: list[Loaded]) -> tuple[list[list[Loaded]], list[str]]:
    """Split-consistent sub-groups of one group's records, and notes about any partition."""
    variants: dict[tuple, list[Loaded]] = defaultdict(list)
    for it in items:
        variants[split_of(it.data)].append(it)
    if protocol.required_splits > 1:  # one entry spans the protocol's splits
        return [list(items)], []
    if protocol.trial_scope != "split":
        by_split: dict[tuple, list[Loaded]] = defaultdict(list)
        for (_, sid, sha), its in variants.items():
            by_split[(sid, sha)].extend(its)
        parts = [by_split[k] for k in sorted(by_split)]
        notes = []
        if len(parts) > 1:
            notes.append(
                f"{items[0].data['objective']['name']}: runs on {len(parts)} different splits "
                f"({', '.join(sid for sid, _ in sorted(by_split))}) are kept as separate entries"
            )
        return parts, notes
    per_trial: dict[Any, list[tuple]] = defaultdict(list)
    for v in variants:
        per_trial[v[0]].append(v)
    main: list[Loaded] = []
    rest: list[list[Loaded]] = []
    notes = []
    for trial in sorted(per_trial, key=lambda t: (t is None, t or 0)):
        vs = sorted(per_trial[trial], key=lambda v: (-len(variants[v]), v[1], v[2]))
        main.extend(variants[vs[0]])
        for v in vs[1:]:
            rest.append(variants[v])
            notes.append(
                f"{items[0].data['objective']['name']}: trial {trial} has runs on split {v[1]} "
                f"besides {vs[0][1]}; they are kept as a separate entry"
            )
    return [main, *rest], notes


def _flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = json.dumps(obj, sort_keys=True)
    return out


def _gallery_label(gallery: dict[str, Any]) -> str:
    """``seeds`` or ``rand_perm_cam:<sha256 prefix>`` (what tells SYSU gallery sources apart)."""
    sha = gallery.get("rand_perm_cam_sha256")
    return f"{gallery.get('source')}:{sha[:8]}" if sha else str(gallery.get("source"))


def _gallery_notes(groups: dict[str, list[Loaded]]) -> dict[tuple, list[str]]:
    """Board notes (by board key) for runs that agree on everything but their gallery source:
    they are separate entries, never averaged."""
    variants: dict[str, set[str]] = defaultdict(set)
    where: dict[str, tuple] = {}
    for members in groups.values():
        rec = members[0].data
        gallery = rec.get("protocol_gallery")
        if gallery is None:
            continue
        base = dict(group_key(rec))
        base.pop("protocol_gallery")
        k = canonical_json(base)
        variants[k].add(_gallery_label(gallery))
        b = rec["benchmark"]
        where[k] = (b["name"], json.dumps(b["version"]), rec["protocol"], rec["objective"]["name"])
    notes: dict[tuple, list[str]] = defaultdict(list)
    for k, labels in variants.items():
        if len(labels) > 1:
            name, version, pid, objective = where[k]
            notes[(name, version, _protocol(pid).id)].append(
                f"{objective}: runs with different gallery sources ({', '.join(sorted(labels))}) "
                "are kept as separate entries (never averaged)"
            )
    return notes


def _show(json_text: str) -> str:
    value = json.loads(json_text)
    return value if isinstance(value, str) else json.dumps(value)


def _varying_parts(group: list[dict[str, Any]]) -> list[list[str]]:
    """Per entry, ``key=value`` for each parameter or config field that differs in the group."""
    flats = [
        _flatten({"objective": e["objective"]["params"], "model": e["model"]["params"]})
        | _flatten(e["config"], "config.")
        | ({"gallery": json.dumps(_gallery_label(e["protocol_gallery"]))}
           if e.get("protocol_gallery") else {})
        for e in group
    ]  # fmt: skip
    keys = sorted(set().union(*flats))
    varying = [k for k in keys if len({f.get(k) for f in flats}) > 1]
    out = []
    for flat in flats:
        parts, seen = [], set()
        for k in varying:
            item = f"{k.rsplit('.', 1)[-1]}={_show(flat[k]) if k in flat else '-'}"
            if item not in seen:
                seen.add(item)
                parts.append(item)
        out.append(parts)
    return out


def _assign_labels(entries: list[dict[str, Any]]) -> None:
    """Label measured entries by objective name plus what tells same-named entries apart."""
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        by_name[e["objective"]["name"]].append(e)
    for name, group in by_name.items():
        if len(group) == 1:
            group[0]["label"] = name
            continue
        by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in group:
            by_model[str(e["model"].get("name"))].append(e)
        for model, members in by_model.items():
            # Different models share no parameter list worth listing: name the model first and
            # tell entries apart by what varies among the entries of the same model.
            head = [f"model={model}"] if len(by_model) > 1 else []
            for e, parts in zip(members, _varying_parts(members), strict=True):
                parts = head + parts[:4]
                e["label"] = f"{name} ({', '.join(parts)})" if parts else name
        labels = [e["label"] for e in group]
        for e in group:
            if labels.count(e["label"]) > 1:
                e["label"] += f" [split {', '.join(s['id'] for s in e['splits'][:2])}]"
        labels = [e["label"] for e in group]
        for e in group:
            if labels.count(e["label"]) > 1:
                e["label"] += f" #{e['key'][:6]}"


def _rank(board: dict[str, Any]) -> None:
    primary, direction = board["primary"], board["direction"]
    ranked = [e for e in board["entries"] if e["measured"] and e["complete"]]
    if board.get("statistics") == "paired":
        paired.rank_board(board)
    else:
        ranks = competition_ranks([e["metrics"][primary]["mean"] for e in ranked], direction)
        for e, r in zip(ranked, ranks, strict=True):
            e["rank"] = r
    sign = -1.0 if direction == "max" else 1.0

    def order(e: dict[str, Any]) -> tuple:
        mean = e["metrics"][primary]["mean"] if primary in e["metrics"] else float("nan")
        group = 0 if e.get("rank") else (1 if e["measured"] else 2)
        return (group, sign * mean, e["label"])

    board["entries"].sort(key=order)


def _board(protocol, name: str, version: Any) -> dict[str, Any]:
    d = protocol.describe()
    return {
        "benchmark": name,
        "benchmark_version": version,
        "protocol": protocol.id,
        "primary": d["primary"],
        "direction": d["direction"],
        "required_seeds": d["required_seeds"],
        "trials": d["trials"],
        "required_trials": d["required_trials"],
        "trial_scope": d["trial_scope"],
        "metrics": d["metrics"],
        **(
            {"required_splits": d["required_splits"], "statistics": d["statistics"]}
            if _paired(protocol) or d.get("required_splits", 1) > 1
            else {}
        ),
        "entries": [],
        # a protocol's own caveats (the camera-only segmentation protocols: not comparable)
        "notes": list(getattr(protocol, "board_notes", ())),
    }


def reference_entries(ref: Loaded) -> list[tuple[str, str, dict[str, Any]]]:
    """(benchmark, protocol, entry) for each row of a reference-rows file."""
    src = ref.data["source"]
    out = []
    for row in ref.data["rows"]:
        std = row.get("std", {})
        entry = {
            "measured": False,
            "label": row["label"],
            "rank": None,
            "source": f"{row['table']} of {src['citation']}",
            "objective": row["objective"],
            "metrics": {
                k: {"mean": float(v), "std": std.get(k), "n": None}
                for k, v in row["metrics"].items()
            },
        }
        if "model" in row:
            entry["model"] = row["model"]
        if "note" in row:
            entry["note"] = row["note"]
        out.append((row["benchmark"], row["protocol"], entry))
    return out


def build(
    records: Sequence[Loaded],
    references: Sequence[Loaded] = (),
    *,
    out_path: str | os.PathLike | None = None,
    benchmarks: Iterable[str] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """The leaderboard of ``records`` (checked first: any violation raises :class:`BuildError`)
    with the reference rows of ``references``. ``out_path`` makes record paths relative to the
    file the leaderboard will be written to; ``benchmarks`` keeps only those benchmarks."""
    from mv2d_bench import __version__
    from mv2d_bench.leaderboards import validate as V

    keep = set(benchmarks) if benchmarks else None
    base = Path(out_path).parent if out_path else None
    problems: list[Violation] = []
    for ref in references:
        problems += V.reference_violations(ref.data, ref.file)
    items = [it for it in records if keep is None or _bench_name(it.data) in keep]
    for it in items:
        problems += V.record_violations(it.data, it.file)
    problems += V.split_sha_violations([(it.file, it.data) for it in items])
    if problems:
        raise BuildError(problems)
    unique: dict[str, Loaded] = {}
    for it in items:
        rid = it.data["run_id"]
        if rid in unique and canonical_json(unique[rid].data) != canonical_json(it.data):
            problems.append(
                Violation(
                    it.file,
                    "$.run_id",
                    f"run id {rid} is also in {unique[rid].file} "
                    "with different content (each run has a unique id)",
                )
            )
        unique.setdefault(rid, it)
    groups: dict[str, list[Loaded]] = defaultdict(list)
    for it in unique.values():
        groups[canonical_json(group_key(it.data))].append(it)
    boards: dict[tuple, dict[str, Any]] = {}
    gallery_notes = _gallery_notes(groups)
    for members in groups.values():
        rec = members[0].data
        protocol = _protocol(rec["protocol"])
        bkey = (rec["benchmark"]["name"], json.dumps(rec["benchmark"]["version"]), protocol.id)
        board = boards.setdefault(
            bkey, _board(protocol, rec["benchmark"]["name"], rec["benchmark"]["version"])
        )
        parts, notes = _partition_by_split(protocol, members)
        board["notes"].extend(notes)
        for note in gallery_notes.get(bkey, []):
            if note not in board["notes"]:
                board["notes"].append(note)
        for part in parts:
            seen: dict[tuple, Loaded] = {}
            for it in part:
                sk = (it.data["seed"], it.data["benchmark"].get("trial"))
                where = ""
                if protocol.required_splits > 1:
                    sk += (it.data["benchmark"]["split_id"],)
                    where = f" on split {sk[2]}"
                if sk in seen:
                    problems.append(
                        Violation(
                            it.file,
                            "$.seed",
                            f"seed {sk[0]}"
                            + (f" trial {sk[1]}" if sk[1] is not None else "")
                            + where
                            + f" of this entry is also recorded in {seen[sk].file}; "
                            "expected one run per seed (remove one of them)",
                        )
                    )
                seen[sk] = it
            splits = {split_of(it.data) for it in part}
            board["entries"].append(_make_entry(protocol, part, splits, base))
    for board in boards.values():
        if board.get("statistics") == "paired":
            problems += _pairing_violations(board)
    if problems:
        raise BuildError(problems)
    for ref in references:
        for bench, pid, entry in reference_entries(ref):
            if keep is not None and bench not in keep:
                continue
            same = [b for k, b in boards.items() if k[0] == bench and k[2] == pid]
            if same:
                board = max(same, key=lambda b: str(b["benchmark_version"]))
            else:
                board = boards.setdefault((bench, "null", pid), _board(_protocol(pid), bench, None))
            board["entries"].append(entry)
    for board in boards.values():
        _assign_labels([e for e in board["entries"] if e["measured"]])
        _rank(board)
        board["notes"].extend(_revision_notes(board))
        if not board["notes"]:
            del board["notes"]
    statistics = {"mean": MEAN_DOC, "std": STD_DOC}
    if any(b.get("statistics") == "paired" for b in boards.values()):
        statistics.update(ci95=paired.CI_DOC, paired=paired.PAIRED_DOC)
    return {
        "schema_version": 1,
        "kind": KIND,
        "created": created or now_iso(),
        "generator": {"package_version": __version__, "git_revision": git_revision()},
        "statistics": statistics,
        "boards": [boards[k] for k in sorted(boards)],
    }


def _revision_notes(board: dict[str, Any]) -> list[str]:
    """Say which entries hold runs of a checkout with uncommitted changes (``-dirty``): their
    code is not the revision they name."""
    notes = []
    for e in board["entries"]:
        if not e["measured"]:
            continue
        dirty = sum(str(r.get("git_revision") or "").endswith("-dirty") for r in e["runs"])
        if dirty:
            notes.append(
                f"{e['label']}: {dirty} of {len(e['runs'])} run(s) were made from a checkout "
                "with uncommitted changes (-dirty); their code is not the revision they name"
            )
    return notes


def _pairing_violations(board: dict[str, Any]) -> list[Violation]:
    """A paired board's entries must be comparable pair by pair (:func:`paired.pairing_problems`);
    each problem names the entry's first record."""
    out = []
    _assign_labels([e for e in board["entries"] if e["measured"]])
    for i, why in paired.pairing_problems(board):
        e = board["entries"][i]
        first = e["runs"][0]["record"] if e["runs"] else None
        where = f"{board['benchmark']} entry {e['label']}"
        out.append(Violation(first or where, "$.seed", f"{where}: {why}"))
    return out


def _bench_name(record: dict[str, Any]) -> Any:
    b = record.get("benchmark")
    return b.get("name") if isinstance(b, dict) else None


def load_references(paths: Iterable[str | os.PathLike]) -> list[Loaded]:
    return [Loaded(Path(p), read_record(p)) for p in paths]


def write_leaderboard(board: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write atomically (a reader never sees a partial file); replaces an older leaderboard."""
    from mv2d_bench.leaderboards.records import atomic_write_text

    text = json.dumps(board, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write_text(Path(path), text)
    return Path(path)
