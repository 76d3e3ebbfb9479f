"""Check run records, leaderboards and reference-rows files against the shipped JSON Schemas and
the protocol rules. Every problem is a :class:`~mv2d_bench.leaderboards.schema.Violation`
naming the file, the JSON path and what was expected; nothing stops at the first one.

Rules beyond the schema:

* records: the run id matches the content (no edits after writing); the protocol is installed at
  that version; the benchmark (when installed) is scored under that protocol; every metric is
  present, finite and in its range, per run and per trial; the trials match the protocol (T
  trials numbered 1..T for ``"run"`` protocols; one trial equal to ``benchmark.trial`` for
  ``"split"`` protocols); the run's metrics are the mean of its trials.
* across records: no run id in two files; a split id has one sha256; runs that would form one
  leaderboard entry use one split per trial and one run per seed; with ``require_complete``,
  every such entry has the seeds (and trials) its protocol requires.
* leaderboards: boards agree with their protocol (primary metric, direction, required seeds,
  trials); every run of a board was scored under the board's protocol id (version included);
  an entry's runs use one split per trial, listed in its ``splits``; ``seeds`` and ``n`` match
  the runs; each metric's values are in range and its mean and std (ddof=1) match the values;
  ``complete`` matches the seed/trial counts; only complete entries are ranked, in the order of
  the primary metric; run ids are unique; reference rows are unranked and in range.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mv2d_bench.leaderboards.records import (
    RECORD_NAME_RE,
    RecordError,
    canonical_json,
    content_id,
    read_record,
)
from mv2d_bench.leaderboards.schema import Violation, check

REL_TOL = 1e-9
LEADERBOARD_KIND = "mv2d-bench/leaderboard"
REFERENCE_KIND = "mv2d-bench/reference-rows"


def _lookup_protocol(pid: Any) -> tuple[Any, str | None]:
    """(protocol instance or None, what is wrong)."""
    from mv2d_bench.registry import RegistryError, registry

    if not isinstance(pid, str) or "@" not in pid:
        return None, f"{pid!r} is not a versioned protocol id (expected e.g. mvc/accuracy@1)"
    reg = registry("protocols")
    if pid in reg:
        try:
            return reg.load(pid)(), None
        except RegistryError as exc:
            return None, f"protocol {pid} cannot be loaded: {exc}"
    family = pid.rsplit("@", 1)[0]
    same = [n for n in reg.names() if n.rsplit("@", 1)[0] == family]
    if same:
        return None, (
            f"protocol version mismatch: {pid} is not installed; this installation scores "
            f"{family} under {', '.join(same)} (results of different versions never compare)"
        )
    return None, f"unknown protocol {pid!r} (installed: {', '.join(reg.names()) or 'none'})"


def _benchmark_protocols(name: Any) -> tuple[str, ...] | None:
    """The protocols a registered benchmark declares, or None when it is not installed."""
    from mv2d_bench.registry import registry

    reg = registry("benchmarks")
    if not isinstance(name, str) or name not in reg:
        return None
    cls = reg.entry(name).try_load()
    if cls is None:
        return None
    return tuple(getattr(cls, "protocols", ())) or None


def _span(nums: list[int]) -> str:
    if not nums:
        return "none"
    return f"{nums[0]}..{nums[-1]}" if len(nums) > 2 else ", ".join(map(str, nums))


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def record_violations(rec: Any, file: str = "") -> list[Violation]:
    """Schema and protocol violations of one run record."""
    out = check(rec, "run-record", file)
    if not isinstance(rec, dict):
        return out
    V = lambda path, msg: out.append(Violation(file, path, msg))  # noqa: E731
    if isinstance(rec.get("run_id"), str):
        try:
            expected = content_id(rec)
        except (TypeError, ValueError):
            expected = None
        if expected is not None and rec["run_id"] != expected:
            V(
                "$.run_id",
                f"{rec['run_id']} does not match the record's content (expected {expected}): "
                "the record was changed after it was written",
            )
    proto, why = _lookup_protocol(rec.get("protocol"))
    if proto is None:
        if "protocol" in rec:
            V("$.protocol", why)
        return sorted(set(out))
    bench = rec.get("benchmark") if isinstance(rec.get("benchmark"), dict) else {}
    declared = _benchmark_protocols(bench.get("name"))
    families = {str(d).rsplit("@", 1)[0] for d in declared or ()}
    if declared is not None and proto.family_id not in families:
        V(
            "$.protocol",
            f"benchmark {bench.get('name')} is scored under {', '.join(declared)}, not {proto.id}",
        )
    metrics = rec.get("metrics")
    for name, msg in proto.metric_problems(metrics):
        V(f"$.metrics.{name}" if name else "$.metrics", msg)
    if getattr(proto, "required_splits", 1) > 1:
        for path, msg in _multi_split_problems(proto, rec):
            V(path, msg)
    for path, msg in getattr(proto, "record_problems", lambda r: [])(rec):
        V(path, msg)  # protocol-specific fields (SYSU-MM01: the gallery source)
    per = rec.get("per_trial")
    if not isinstance(per, list):
        return sorted(set(out))
    trial = bench.get("trial")
    numbers = [p.get("trial") for p in per if isinstance(p, dict)]
    if proto.trial_scope == "split":
        allowed = list(proto.required_trials)
        if trial not in allowed or isinstance(trial, bool):
            V(
                "$.benchmark.trial",
                f"{trial!r}: protocol {proto.id} runs each trial separately; expected the "
                f"trial number, one of {_span(allowed)}",
            )
        if len(per) != proto.trials or any(n != trial for n in numbers):
            V(
                "$.per_trial",
                f"trials {numbers}: expected {proto.trials} entry for the run's own trial "
                f"{trial!r} (protocol {proto.id} scores one trial per run)",
            )
    else:
        if trial is not None:
            V(
                "$.benchmark.trial",
                f"{trial!r}: protocol {proto.id} has no split trials; expected null",
            )
        want = list(range(1, proto.trials + 1))
        if sorted(n for n in numbers if isinstance(n, int)) != want or len(numbers) != len(want):
            V(
                "$.per_trial",
                f"trials {numbers}: protocol {proto.id} scores a run over {proto.trials} "
                f"trial(s), numbered {_span(want)}, each once",
            )
    for i, p in enumerate(per):
        if isinstance(p, dict):
            for name, msg in proto.metric_problems(p.get("metrics")):
                V(f"$.per_trial[{i}].metrics" + (f".{name}" if name else ""), msg)
    if isinstance(metrics, dict) and per:
        for m in proto.metrics:
            vals = [
                p["metrics"][m.name]
                for p in per
                if isinstance(p, dict)
                and isinstance(p.get("metrics"), dict)
                and m.in_range(p["metrics"].get(m.name))
            ]
            got = metrics.get(m.name)
            if len(vals) == len(per) and m.in_range(got):
                mean = math.fsum(vals) / len(vals)
                if not math.isclose(got, mean, rel_tol=1e-6, abs_tol=1e-6):
                    V(
                        f"$.metrics.{m.name}",
                        f"{got!r}: expected the mean over per_trial, {mean!r}",
                    )
    return sorted(set(out))


def _multi_split_problems(proto, rec: dict[str, Any]) -> list[tuple[str, str]]:
    """A run of a multi-split protocol (mvc/accuracy@2) is on one of the benchmark's splits,
    made by the protocol's split procedure."""
    out = []
    bench = rec.get("benchmark") if isinstance(rec.get("benchmark"), dict) else {}
    allowed = proto.split_ids(bench.get("name")) if hasattr(proto, "split_ids") else None
    sid = bench.get("split_id")
    if allowed is not None and sid not in allowed:
        out.append(
            (
                "$.benchmark.split_id",
                f"{sid!r}: protocol {proto.id} runs {bench.get('name')} on the splits of its data "
                f"card, {', '.join(allowed)}",
            )
        )
    data = rec.get("config", {}).get("data") if isinstance(rec.get("config"), dict) else None
    want = getattr(proto, "split_procedure", None)
    if want and isinstance(data, dict) and data.get("split") != want:
        out.append(
            (
                "$.config.data.split",
                f"{data.get('split')!r}: protocol {proto.id} uses the {want!r} split procedure",
            )
        )
    seed = data.get("split_seed") if isinstance(data, dict) else None
    if hasattr(proto, "split_id_of") and isinstance(seed, int) and not isinstance(seed, bool):
        if isinstance(sid, str) and sid != proto.split_id_of(seed):
            out.append(
                (
                    "$.config.data.split_seed",
                    f"{seed}: the run's split id is {sid!r}, but split seed {seed} makes "
                    f"{proto.split_id_of(seed)!r}; expected the seed that made the split",
                )
            )
    return out


def _entry_key(rec: dict[str, Any]) -> str | None:
    from mv2d_bench.leaderboards.board import group_key

    try:
        return canonical_json(group_key(rec))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def split_sha_violations(items: Sequence[tuple[str, dict[str, Any]]]) -> list[Violation]:
    """One index list (split_sha256) per (benchmark, split id) among records (file, record):
    runs are averaged and paired by split id, so one id must mean one split."""
    out: list[Violation] = []
    split_sha: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for file, rec in items:
        b = rec.get("benchmark") if isinstance(rec, dict) else None
        if isinstance(b, dict) and isinstance(b.get("split_id"), str):
            where = (str(b.get("name")), b["split_id"])
            split_sha[where].setdefault(str(b.get("split_sha256")), file)
    for (bench, sid), shas in split_sha.items():
        if len(shas) > 1:
            desc = "; ".join(f"{sha[:12]}... in {f}" for sha, f in shas.items())
            for f in list(shas.values())[1:]:
                out.append(
                    Violation(
                        f,
                        "$.benchmark.split_sha256",
                        f"split id {sid} of {bench} has different index lists: {desc}; "
                        "expected one sha256 per split id",
                    )
                )
    return out


def records_cross_violations(
    items: Sequence[tuple[str, dict[str, Any]]], require_complete: bool = False
) -> list[Violation]:
    """Rules across a set of records (file, record): unique run ids, consistent splits, one run
    per seed (and trial) per entry, and with ``require_complete`` the required seed counts."""
    from mv2d_bench.leaderboards.board import completeness

    out: list[Violation] = []
    by_id: dict[str, list[str]] = defaultdict(list)
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for file, rec in items:
        if not isinstance(rec, dict):
            continue
        rid = rec.get("run_id")
        if isinstance(rid, str):
            by_id[rid].append(file)
        b = rec.get("benchmark")
        key = _entry_key(rec)
        if key is not None and isinstance(b, dict):
            groups[key].append((file, rec))
    for rid, files in by_id.items():
        uniq = list(dict.fromkeys(os.path.realpath(f) for f in files))
        if len(uniq) > 1:
            for f in files[1:]:
                out.append(
                    Violation(
                        f,
                        "$.run_id",
                        f"duplicated run id {rid}: also in {files[0]} (each run has a unique id)",
                    )
                )
    out += split_sha_violations(items)
    for members in groups.values():
        proto, _ = _lookup_protocol(members[0][1].get("protocol"))
        multi = proto is not None and getattr(proto, "required_splits", 1) > 1
        by_trial: dict[Any, dict[tuple, str]] = defaultdict(dict)
        runs: dict[tuple, tuple[str, Any]] = {}
        for file, rec in members:
            b = rec["benchmark"]
            by_trial[b.get("trial")].setdefault((b["split_id"], b.get("split_sha256")), file)
            sk = (rec.get("seed"), b.get("trial")) + ((b["split_id"],) if multi else ())
            if sk in runs and runs[sk][1] != rec.get("run_id"):
                out.append(
                    Violation(
                        file,
                        "$.seed",
                        f"seed {sk[0]}"
                        + (f" trial {sk[1]}" if sk[1] is not None else "")
                        + (f" on split {sk[2]}" if multi else "")
                        + f" is recorded twice for the same entry (also {runs[sk][0]}); "
                        "expected one run per seed",
                    )
                )
            runs.setdefault(sk, (file, rec.get("run_id")))
        for trial, splits in by_trial.items():
            if len(splits) > 1 and not multi:
                names = ", ".join(f"{sid} ({f})" for (sid, _), f in splits.items())
                for f in list(splits.values())[1:]:
                    out.append(
                        Violation(
                            f,
                            "$.benchmark.split_id",
                            "mixed split ids"
                            + (f" in trial {trial}" if trial is not None else "")
                            + f" among runs of one entry: {names}; expected one split "
                            "(runs on different splits are never averaged)",
                        )
                    )
        if require_complete:
            if proto is None:
                continue
            seeds = [
                {
                    "seed": r.get("seed"),
                    "trial": r["benchmark"].get("trial"),
                    "split_id": r["benchmark"].get("split_id"),
                }
                for _, r in members
            ]
            ok, why = completeness(proto, seeds)
            if not ok:
                rec = members[0][1]
                out.append(
                    Violation(
                        members[0][0],
                        "$.seed",
                        f"too few seeds for {rec['benchmark']['name']}/{rec['objective']['name']}"
                        f" under {proto.id}: {why}",
                    )
                )
    return out


def reference_violations(data: Any, file: str = "") -> list[Violation]:
    out = check(data, "reference-rows", file)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        return out
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict):
            continue
        proto, why = _lookup_protocol(row.get("protocol"))
        if proto is None:
            out.append(Violation(file, f"$.rows[{i}].protocol", str(why)))
            continue
        metrics = row.get("metrics")
        if isinstance(metrics, dict):
            for name, value in metrics.items():
                try:
                    m = proto.metric(name)
                except KeyError:
                    out.append(
                        Violation(
                            file,
                            f"$.rows[{i}].metrics.{name}",
                            f"protocol {proto.id} has no metric {name!r} (expected one of "
                            f"{', '.join(x.name for x in proto.metrics)})",
                        )
                    )
                    continue
                if not m.in_range(value):
                    out.append(
                        Violation(
                            file, f"$.rows[{i}].metrics.{name}", f"{value!r} is not {m.expected()}"
                        )
                    )
    return sorted(set(out))


def _check_stat(out, file, path, m, stat, expected_values) -> None:
    """The stat's values are the expected ones (from the runs), in range, with their mean,
    sample std (ddof=1) and n."""
    values = stat.get("values")
    if not isinstance(values, list) or not values:
        return
    for j, v in enumerate(values):
        if not m.in_range(v):
            out.append(Violation(file, f"{path}.values[{j}]", f"{v!r} is not {m.expected()}"))
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        return
    if expected_values is not None and (
        len(values) != len(expected_values)
        or not all(_close(a, b) for a, b in zip(values, expected_values, strict=False))
    ):
        out.append(
            Violation(
                file,
                f"{path}.values",
                f"{values!r}: expected the runs' values {expected_values!r}",
            )
        )
    if stat.get("n") != len(values):
        out.append(Violation(file, f"{path}.n", f"{stat.get('n')!r}, expected {len(values)}"))
    mean = statistics.fmean(values)
    if not isinstance(stat.get("mean"), (int, float)) or not _close(stat["mean"], mean):
        out.append(
            Violation(file, f"{path}.mean", f"{stat.get('mean')!r}, expected the mean {mean!r}")
        )
    std = statistics.stdev(values) if len(values) >= 2 else None
    got = stat.get("std")
    if std is None and got is not None:
        out.append(Violation(file, f"{path}.std", f"{got!r}, expected null for n < 2"))
    elif std is not None and (not isinstance(got, (int, float)) or not _close(got, std)):
        out.append(
            Violation(file, f"{path}.std", f"{got!r}, expected the sample std (ddof=1) {std!r}")
        )


def _run_values(proto, runs: list[dict[str, Any]], name: str) -> list[float] | None:
    """What the entry's values must be, recomputed from its runs (None when runs lack them)."""
    vals = []
    for r in runs:
        v = r.get("metrics", {}).get(name) if isinstance(r.get("metrics"), dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        vals.append((r.get("trial"), float(v)))
    if proto.trial_scope != "split":
        return [v for _, v in vals]
    by_trial: dict[Any, list[float]] = defaultdict(list)
    for t, v in vals:
        by_trial[t].append(v)
    return [statistics.fmean(by_trial[t]) for t in sorted(by_trial, key=lambda t: (t is None, t))]


def leaderboard_violations(
    lb: Any,
    file: str = "",
    *,
    records: dict[str, tuple[str, dict[str, Any]]] | None = None,
    require_records: bool = True,
) -> list[Violation]:
    """Schema and protocol violations of one leaderboard.

    Every run must be backed by its run record, found at its ``record`` path (relative to
    ``file``) or, by run id, among ``records`` (run id -> (file, record), e.g. the other files
    being validated); the leaderboard must say what the record says. A run whose record cannot
    be found is a violation unless ``require_records`` is False (or the leaderboard has no
    ``file``: it is not on disk yet)."""
    from mv2d_bench.leaderboards.board import competition_ranks, completeness

    out = check(lb, "leaderboard", file)
    if not isinstance(lb, dict) or not isinstance(lb.get("boards"), list):
        return out
    run_ids: dict[str, str] = {}
    board_keys: dict[tuple, int] = {}
    for bi, board in enumerate(lb["boards"]):
        bp = f"$.boards[{bi}]"
        if not isinstance(board, dict):
            continue
        bk = (board.get("benchmark"), str(board.get("benchmark_version")), board.get("protocol"))
        if bk in board_keys:
            out.append(
                Violation(
                    file,
                    bp,
                    f"a second board for {bk[0]} under {bk[2]} "
                    f"(first: $.boards[{board_keys[bk]}]); expected one",
                )
            )
        board_keys.setdefault(bk, bi)
        proto, why = _lookup_protocol(board.get("protocol"))
        if proto is None:
            out.append(Violation(file, f"{bp}.protocol", str(why)))
            continue
        d = proto.describe()
        fields = ("primary", "direction", "required_seeds", "trials", "required_trials")
        for field in (*fields, "trial_scope"):
            if field in board and board[field] != d[field]:
                out.append(
                    Violation(
                        file,
                        f"{bp}.{field}",
                        f"{board[field]!r}, but protocol {proto.id} has {d[field]!r}",
                    )
                )
        entries = board.get("entries") if isinstance(board.get("entries"), list) else []
        ranked: list[tuple[int, float, Any]] = []
        for ei, e in enumerate(entries):
            ep = f"{bp}.entries[{ei}]"
            if not isinstance(e, dict):
                continue
            metrics = e.get("metrics") if isinstance(e.get("metrics"), dict) else {}
            if e.get("measured") is not True:
                for name, stat in metrics.items():
                    try:
                        m = proto.metric(name)
                    except KeyError:
                        out.append(
                            Violation(
                                file,
                                f"{ep}.metrics.{name}",
                                f"protocol {proto.id} has no metric {name!r}",
                            )
                        )
                        continue
                    if isinstance(stat, dict) and not m.in_range(stat.get("mean")):
                        out.append(
                            Violation(
                                file,
                                f"{ep}.metrics.{name}.mean",
                                f"{stat.get('mean')!r} is not {m.expected()}",
                            )
                        )
                continue
            runs = [r for r in e.get("runs", []) if isinstance(r, dict)]
            for ri, r in enumerate(runs):
                rid = r.get("run_id")
                if isinstance(rid, str):
                    if rid in run_ids:
                        out.append(
                            Violation(
                                file,
                                f"{ep}.runs[{ri}].run_id",
                                f"duplicated run id {rid} (also at {run_ids[rid]}); "
                                "expected each run once",
                            )
                        )
                    run_ids.setdefault(rid, f"{ep}.runs[{ri}]")
                out += _run_matches_record(
                    r, file, f"{ep}.runs[{ri}]", proto, records or {}, require_records
                )
                if r.get("protocol") != proto.id:
                    out.append(
                        Violation(
                            file,
                            f"{ep}.runs[{ri}].protocol",
                            f"protocol version mismatch: run scored under {r.get('protocol')!r}, "
                            f"board is {proto.id}; expected every run under the board's protocol",
                        )
                    )
            splits: dict[Any, set] = defaultdict(set)
            for r in runs:
                splits[r.get("trial")].add((r.get("split_id"), r.get("split_sha256")))
            for trial, ss in splits.items():
                if len(ss) > 1 and getattr(proto, "required_splits", 1) == 1:
                    out.append(
                        Violation(
                            file,
                            f"{ep}.runs",
                            "mixed split ids"
                            + (f" in trial {trial}" if trial is not None else "")
                            + f": {', '.join(sorted(str(s[0]) for s in ss))}; expected one split "
                            "(runs on different splits are never averaged)",
                        )
                    )
            listed = {
                (s.get("trial"), s.get("id"), s.get("sha256"))
                for s in e.get("splits", [])
                if isinstance(s, dict)
            }
            actual = {(t, s[0], s[1]) for t, ss in splits.items() for s in ss}
            if runs and listed != actual:
                out.append(
                    Violation(
                        file,
                        f"{ep}.splits",
                        f"does not list the runs' splits (expected {sorted(actual, key=str)})",
                    )
                )
            seeds = sorted({r.get("seed") for r in runs if isinstance(r.get("seed"), int)})
            if runs and e.get("seeds") != seeds:
                out.append(
                    Violation(file, f"{ep}.seeds", f"{e.get('seeds')!r}, runs have seeds {seeds}")
                )
            if runs and e.get("n") != len(runs):
                out.append(Violation(file, f"{ep}.n", f"{e.get('n')!r}, expected {len(runs)} runs"))
            for m in proto.metrics:
                stat = metrics.get(m.name)
                lacking = any(
                    not isinstance(r.get("metrics"), dict) or m.name not in r["metrics"]
                    for r in runs
                )
                if not isinstance(stat, dict) and m.optional and lacking:
                    continue  # added after some of these runs were recorded
                if not isinstance(stat, dict):
                    out.append(
                        Violation(
                            file,
                            f"{ep}.metrics.{m.name}",
                            f"missing; protocol {proto.id} reports {m.name}",
                        )
                    )
                    continue
                for ri, r in enumerate(runs):
                    v = (
                        r.get("metrics", {}).get(m.name)
                        if isinstance(r.get("metrics"), dict)
                        else 0
                    )
                    if v is not None and not m.in_range(v):
                        out.append(
                            Violation(
                                file,
                                f"{ep}.runs[{ri}].metrics.{m.name}",
                                f"{v!r} is not {m.expected()}",
                            )
                        )
                expected = _run_values(proto, runs, m.name)
                _check_stat(out, file, f"{ep}.metrics.{m.name}", m, stat, expected)
            if runs and all(isinstance(r.get("seed"), int) for r in runs):
                complete, reason = completeness(proto, runs)
                if e.get("complete") is True and not complete:
                    out.append(
                        Violation(
                            file,
                            f"{ep}.complete",
                            f"marked complete but has too few seeds/trials: {reason}",
                        )
                    )
                elif e.get("complete") is False and complete:
                    out.append(
                        Violation(
                            file,
                            f"{ep}.complete",
                            "marked incomplete but has the seeds/trials it requires",
                        )
                    )
            rank = e.get("rank")
            if e.get("complete") is not True and rank is not None:
                out.append(
                    Violation(
                        file,
                        f"{ep}.rank",
                        f"{rank!r}: an incomplete entry is not ranked (expected null)",
                    )
                )
            elif e.get("complete") is True:
                if rank is None:
                    out.append(Violation(file, f"{ep}.rank", "null: a complete entry is ranked"))
                stat = metrics.get(proto.primary)
                if isinstance(stat, dict) and isinstance(stat.get("mean"), (int, float)):
                    ranked.append((ei, stat["mean"], rank))
        if getattr(proto, "statistics", "mean-std") == "paired":
            out += _paired_board_problems(board, file, bp)
        elif ranked:
            expect = competition_ranks([m for _, m, _ in ranked], proto.primary_metric.direction)
            for (ei, mean, rank), want in zip(ranked, expect, strict=True):
                if rank != want:
                    out.append(
                        Violation(
                            file,
                            f"{bp}.entries[{ei}].rank",
                            f"{rank!r}: with {proto.primary} {mean!r} ({d['direction']} is "
                            f"better) the rank is {want}",
                        )
                    )
    return sorted(set(out))


def _paired_board_problems(board: dict[str, Any], file: str, bp: str) -> list[Violation]:
    """A paired board's ranks, confidence intervals and paired differences are what its runs
    give (recomputed by :mod:`mv2d_bench.leaderboards.paired`)."""
    from mv2d_bench.leaderboards import paired

    out: list[Violation] = []
    entries = [e for e in board.get("entries", []) if isinstance(e, dict)]
    try:
        again = copy.deepcopy({**board, "entries": entries})
        for e in again["entries"]:
            if e.get("measured") and e.get("complete"):
                for stat in e.get("metrics", {}).values():
                    if isinstance(stat, dict):
                        stat["ci95"] = paired.ci95(stat.get("values", []))
        paired.rank_board(again)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [Violation(file, f"{bp}.entries", f"paired statistics cannot be recomputed: {exc}")]
    try:
        pairing = paired.pairing_problems({**board, "entries": entries})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [Violation(file, f"{bp}.entries", f"runs cannot be paired: {exc}")]
    out += [Violation(file, f"{bp}.entries[{i}].runs", why) for i, why in pairing]
    for ei, (got, want) in enumerate(zip(entries, again["entries"], strict=True)):
        if not (got.get("measured") and got.get("complete")):
            continue
        ep = f"{bp}.entries[{ei}]"
        if got.get("rank") != want.get("rank"):
            out.append(
                Violation(
                    file,
                    f"{ep}.rank",
                    f"{got.get('rank')!r}: the paired test against the best entry gives rank "
                    f"{want.get('rank')}",
                )
            )
        for name, stat in got.get("metrics", {}).items():
            wci = want["metrics"][name].get("ci95") if isinstance(stat, dict) else None
            gci = stat.get("ci95") if isinstance(stat, dict) else None
            if not _close_lists(gci, wci):
                out.append(
                    Violation(file, f"{ep}.metrics.{name}.ci95", f"{gci!r}, expected {wci!r}")
                )
        if not _close_tree(got.get("paired"), want.get("paired")):
            out.append(
                Violation(
                    file,
                    f"{ep}.paired",
                    f"{got.get('paired')!r} is not what the runs give: {want.get('paired')!r}",
                )
            )
    return out


def _close_lists(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (
        isinstance(a, list)
        and len(a) == len(b)
        and all(isinstance(x, (int, float)) and _close(x, y) for x, y in zip(a, b, strict=True))
    )


def _close_tree(a: Any, b: Any) -> bool:
    if isinstance(b, dict):
        return (
            isinstance(a, dict) and a.keys() == b.keys() and all(_close_tree(a[k], b[k]) for k in b)
        )
    if isinstance(b, list):
        return _close_lists(a, b) if all(isinstance(x, (int, float)) for x in b) else a == b
    if isinstance(b, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
        return _close(a, b)
    return a == b


def find_run_record(
    run: dict[str, Any], file: str, records: dict[str, tuple[str, dict[str, Any]]]
) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """(where, record, problem) of a leaderboard run: its ``record`` path relative to the
    leaderboard ``file``, else the record with its run id among ``records``."""
    rel = run.get("record")
    target = Path(file).parent / rel if file and isinstance(rel, str) else None
    if target is not None and target.is_file():
        try:
            return str(target), read_record(target), None
        except (RecordError, OSError):
            return str(target), None, f"{rel}: not a readable run record"
    found = records.get(run.get("run_id")) if isinstance(run.get("run_id"), str) else None
    if found is not None:
        return found[0], found[1], None
    where = f"{rel!r} (looked for {target})" if target is not None else f"{rel!r}"
    return (
        None,
        None,
        (
            f"{where}: run record not found; expected the record behind every number (give its "
            "folder too: leaderboard validate BOARD RECORDS_DIR)"
        ),
    )


def missing_run_records(lb: Any, file: str) -> int:
    """How many runs of ``lb`` have no run record at hand (see :func:`find_run_record`)."""
    n = 0
    for board in lb.get("boards", []) if isinstance(lb, dict) else []:
        for e in board.get("entries", []) if isinstance(board, dict) else []:
            if isinstance(e, dict) and e.get("measured") is True:
                for run in e.get("runs", []):
                    if isinstance(run, dict) and find_run_record(run, file, {})[1] is None:
                        n += 1
    return n


def _run_matches_record(
    run: dict[str, Any],
    file: str,
    path: str,
    proto,
    records: dict[str, tuple[str, dict[str, Any]]],
    require: bool,
) -> list[Violation]:
    """The leaderboard must say what the run's record says: anyone holding the records can
    check it; a record that cannot be found is a violation when ``require``."""
    if not file and not records:
        return []
    where, rec, problem = find_run_record(run, file, records)
    if rec is None:
        if problem is not None and (where is not None or require):
            return [Violation(file, f"{path}.record", problem)]
        return []
    rel = where
    b = rec.get("benchmark") if isinstance(rec.get("benchmark"), dict) else {}
    env = rec.get("environment") if isinstance(rec.get("environment"), dict) else {}
    metrics = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
    want = {
        "run_id": rec.get("run_id"),
        "seed": rec.get("seed"),
        "trial": b.get("trial"),
        "protocol": rec.get("protocol"),
        "split_id": b.get("split_id"),
        "split_sha256": b.get("split_sha256"),
        "created": rec.get("created"),
        "package_version": env.get("package_version"),
        "git_revision": env.get("git_revision"),
        "metrics": {
            m.name: metrics.get(m.name)
            for m in proto.metrics
            if not m.optional or m.name in metrics  # optional: only where the record has it
        },
    }
    out = []
    for key, value in want.items():
        if run.get(key) != value:
            out.append(
                Violation(
                    file,
                    f"{path}.{key}",
                    f"{run.get(key)!r}, but its record {rel} says {value!r}",
                )
            )
    return out


def kind_of(data: Any) -> str:
    if isinstance(data, dict):
        if data.get("kind") == LEADERBOARD_KIND or "boards" in data:
            return "leaderboard"
        if data.get("kind") == REFERENCE_KIND:
            return "reference-rows"
    return "run-record"


def validate_paths(
    paths: Iterable[str | os.PathLike], require_complete: bool = False
) -> tuple[list[Violation], dict[str, int]]:
    """Every violation in the files (folders: their run records), and counts per kind."""
    out: list[Violation] = []
    counts: dict[str, int] = defaultdict(int)
    records: list[tuple[str, dict[str, Any]]] = []
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            out.append(Violation(str(p), "$", "no such file or folder"))
            continue
        files.extend(_files_under(p) if p.is_dir() else [p])
    loaded: list[tuple[Path, dict[str, Any], str]] = []
    for f in files:
        try:
            data = read_record(f)
        except (RecordError, OSError) as exc:
            out.append(Violation(str(f), "$", str(exc).removeprefix(f"{f}: ")))
            counts["unreadable"] += 1
            continue
        kind = kind_of(data)
        counts[kind] += 1
        loaded.append((f, data, kind))
        if kind == "run-record":
            records.append((str(f), data))
    by_id = {
        rec["run_id"]: (file, rec) for file, rec in records if isinstance(rec.get("run_id"), str)
    }
    for f, data, kind in loaded:
        if kind == "leaderboard":
            out += leaderboard_violations(data, str(f), records=by_id)
            if require_complete:
                out += incomplete_entries(data, str(f))
        elif kind == "reference-rows":
            out += reference_violations(data, str(f))
        else:
            out += record_violations(data, str(f))
    out += records_cross_violations(records, require_complete)
    return sorted(set(out)), dict(counts)


def _files_under(folder: Path) -> list[Path]:
    """Run records (named as the writer names them) and leaderboard / reference-rows files
    (recognised by their "kind") under ``folder``; other JSON files are not ours to check."""
    out = []
    for f in sorted(folder.rglob("*.json")):
        if RECORD_NAME_RE.match(f.name):
            out.append(f)
            continue
        try:
            data = read_record(f)
        except (RecordError, OSError):
            continue
        if data.get("kind") in (LEADERBOARD_KIND, REFERENCE_KIND):
            out.append(f)
    return out


def incomplete_entries(lb: dict[str, Any], file: str) -> list[Violation]:
    out = []
    for bi, board in enumerate(lb.get("boards", [])):
        for ei, e in enumerate(board.get("entries", []) if isinstance(board, dict) else []):
            if isinstance(e, dict) and e.get("measured") is True and e.get("complete") is False:
                out.append(
                    Violation(
                        file,
                        f"$.boards[{bi}].entries[{ei}].complete",
                        f"too few seeds/trials: {e.get('incomplete_reason')} (--require-complete)",
                    )
                )
    return out
