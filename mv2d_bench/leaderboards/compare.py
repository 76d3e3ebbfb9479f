"""Compare two leaderboards entry by entry: what changed and by how much, and whether a change of
a mean exceeds the seeds' spread.

Entries are matched per board (benchmark, protocol) by their key (same objective, params, model,
config and splits); entries left over on both sides are then matched by label (a re-configured
entry: its config differences are listed). Reference rows match by label and source.

For every metric, ``delta`` = mean(B) - mean(A). The difference "exceeds the spread" when
|delta| is larger than the larger of the two sample stds (the seed-to-seed spread of either
side); it is unknown (None) when neither side has a std (n < 2). When both sides list at least
two values, Welch's t-test p-value (scipy) is given too.

When both sides of an entry ran the same pairs of split and training seed (at least two; e.g.
the 5 splits x 2 seeds of mvc/accuracy@2), the comparison is paired instead, with the statistics
the leaderboard uses (:func:`mv2d_bench.leaderboards.paired.paired_difference`): ``paired`` holds
the mean of B - A over the pairs, its 95 % t interval and the paired t-test p-value, and
``significant`` says whether p < 0.05.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from mv2d_bench.leaderboards.render import stat_text


def _boards(lb: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(b["benchmark"], b["protocol"]): b for b in lb["boards"]}


def _flat(obj: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): json.dumps(obj, sort_keys=True)}


def _setting(e: dict[str, Any]) -> dict[str, str]:
    if not e["measured"]:
        return {}
    return _flat(
        {
            "objective": e["objective"],
            "model": e["model"]["params"],
            "config": e["config"],
            "splits": {str(s["trial"]): s["id"] for s in e["splits"]},
        }
    )


def exceeds_spread(delta: float, std_a: float | None, std_b: float | None) -> bool | None:
    spreads = [s for s in (std_a, std_b) if s is not None]
    if not spreads:
        return None
    return abs(delta) > max(spreads)


def welch_p(a: list[float] | None, b: list[float] | None) -> float | None:
    if not a or not b or len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    if len(set(a)) == 1 and len(set(b)) == 1:
        return None if a[0] == b[0] else 0.0
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else None  # nearly identical values: no test result


def paired_rows(a: dict[str, Any] | None, b: dict[str, Any] | None, metric: str) -> Any:
    """B - A paired by (split, seed) when both measured entries ran the same pairs, else None."""
    from mv2d_bench.leaderboards import paired

    if not (a and b and a.get("measured") and b.get("measured")):
        return None
    va = paired.values_by_pair(a.get("runs", []), metric)
    vb = paired.values_by_pair(b.get("runs", []), metric)
    if set(va) != set(vb) or len(va) < 2:
        return None
    return paired.paired_difference(vb, va)


def _metrics(board: dict[str, Any], a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict:
    out = {}
    for m in board["metrics"]:
        sa = (a or {}).get("metrics", {}).get(m["name"])
        sb = (b or {}).get("metrics", {}).get(m["name"])
        if sa is None and sb is None:
            continue
        row: dict[str, Any] = {
            "a": sa.get("mean") if sa else None,
            "b": sb.get("mean") if sb else None,
            "std_a": sa.get("std") if sa else None,
            "std_b": sb.get("std") if sb else None,
        }
        if sa and sb:
            row["delta"] = sb["mean"] - sa["mean"]
            row["exceeds_spread"] = exceeds_spread(row["delta"], row["std_a"], row["std_b"])
            row["welch_p"] = welch_p(sa.get("values"), sb.get("values"))
            pd = paired_rows(a, b, m["name"])
            if pd is not None:
                row["paired"] = pd
                row["significant"] = pd["p_value"] < 0.05
            better = (row["delta"] > 0) == (m["direction"] == "max")
            row["direction"] = "same" if row["delta"] == 0 else ("better" if better else "worse")
        out[m["name"]] = row
    return out


def _changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for field in ("rank", "complete", "n", "seeds", "label"):
        if a.get(field) != b.get(field):
            out.append(f"{field}: {a.get(field)!r} -> {b.get(field)!r}")
    if a["measured"] and b["measured"]:
        ra = {r["run_id"] for r in a["runs"]}
        rb = {r["run_id"] for r in b["runs"]}
        if ra != rb:
            out.append(f"runs: {len(rb - ra)} added, {len(ra - rb)} removed")
        fa, fb = _setting(a), _setting(b)
        for k in sorted(set(fa) | set(fb)):
            if fa.get(k) != fb.get(k):
                out.append(f"{k}: {fa.get(k, '-')} -> {fb.get(k, '-')}")
    return out


def _match(ea: list[dict[str, Any]], eb: list[dict[str, Any]]) -> Iterator[tuple[Any, Any]]:
    def key(e: dict[str, Any]) -> tuple:
        return ("m", e["key"]) if e["measured"] else ("r", e["label"], e["source"])

    kb = {key(e): e for e in eb}
    left_a, used = [], set()
    for e in ea:
        k = key(e)
        if k in kb:
            used.add(k)
            yield e, kb[k]
        else:
            left_a.append(e)
    left_b = [e for e in eb if key(e) not in used]
    by_label = {(e["measured"], e["label"]): e for e in left_b}
    for e in left_a:
        other = by_label.pop((e["measured"], e["label"]), None)
        yield e, other
    for e in by_label.values():
        yield None, e


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per entry of either leaderboard: status (same, changed, only-a, only-b), metric deltas
    and what changed."""
    ba, bb = _boards(a), _boards(b)
    entries = []
    for bkey in sorted(set(ba) | set(bb)):
        board_a, board_b = ba.get(bkey), bb.get(bkey)
        board = board_b or board_a
        for ea, eb in _match(
            board_a["entries"] if board_a else [], board_b["entries"] if board_b else []
        ):
            row: dict[str, Any] = {
                "benchmark": bkey[0],
                "protocol": bkey[1],
                "label": (eb or ea)["label"],
                "measured": (eb or ea)["measured"],
                "metrics": _metrics(board, ea, eb),
            }
            if ea is None or eb is None:
                row["status"] = "only-b" if ea is None else "only-a"
                row["changes"] = []
            else:
                row["changes"] = _changes(ea, eb)
                moved = any(m.get("delta") for m in row["metrics"].values())
                row["status"] = "changed" if row["changes"] or moved else "same"
            entries.append(row)
    return {"a": a.get("created"), "b": b.get("created"), "entries": entries}


def format_text(result: dict[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"A = {name_a} ({result['a']})", f"B = {name_b} ({result['b']})", ""]
    current = None
    for r in result["entries"]:
        if (r["benchmark"], r["protocol"]) != current:
            current = (r["benchmark"], r["protocol"])
            lines.append(f"{r['benchmark']} / {r['protocol']}")
        tag = "" if r["measured"] else " [reference]"
        if r["status"] in ("only-a", "only-b"):
            side = "A" if r["status"] == "only-a" else "B"
            s = side.lower()
            vals = ", ".join(
                f"{k} {stat_text({'mean': m[s], 'std': m['std_' + s]})}"
                for k, m in r["metrics"].items()
            )
            lines.append(
                f"  {'-' if side == 'A' else '+'} {r['label']}{tag}: only in {side} ({vals})"
            )
            continue
        lines.append(f"  {r['label']}{tag}: {r['status']}")
        for k, m in r["metrics"].items():
            if "delta" not in m:
                continue
            spread = {True: "EXCEEDS the seeds' spread", False: "within the seeds' spread",
                      None: "spread unknown (n < 2)"}[m["exceeds_spread"]]  # fmt: skip
            p = f", Welch p={m['welch_p']:.3g}" if m.get("welch_p") is not None else ""
            if m.get("paired"):
                pd = m["paired"]
                lo, hi = pd["ci95"]
                p += (
                    f"; paired over {pd['n']} (split, seed) pairs: {pd['mean']:+.2f} "
                    f"[95 % CI {lo:+.2f}, {hi:+.2f}], paired t p={pd['p_value']:.3g}, "
                    + ("SIGNIFICANT" if m["significant"] else "not significant")
                )
            lines.append(
                f"    {k}: {stat_text({'mean': m['a'], 'std': m['std_a']})} -> "
                f"{stat_text({'mean': m['b'], 'std': m['std_b']})} ({m['delta']:+.2f}, "
                f"{m['direction']}; {spread}{p})"
            )
        for c in r["changes"]:
            lines.append(f"    {c}")
    return "\n".join(lines) + "\n"
