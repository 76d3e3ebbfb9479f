"""Paired statistics of leaderboard entries (protocols with ``statistics = "paired"``, e.g.
``mvc/accuracy@2``): confidence intervals, paired differences, paired tests and the rank rule.

Every run of such an entry is identified by its split and training seed (:func:`pair_key`), and
two entries of one board ran the same (split, seed) pairs, so they are compared pair by pair:

* **per entry**: mean, sample std (ddof = 1) and the 95 % confidence interval of the mean,
  ``mean +- t_{0.975, n-1} * std / sqrt(n)`` (Student's t; null when n < 2);
* **between entries**: the differences ``d_k = a_k - b_k`` over the pairs both ran (at least 2),
  their mean, a 95 % t interval of the mean difference and the two-sided paired t-test p-value
  (``scipy.stats.ttest_rel``). All differences zero: p = 1; a constant non-zero difference: p = 0.
  The test treats the pairs as independent; runs that share a split are not fully independent,
  so with 2 seeds per split the p-value is, if anything, optimistic about differences that come
  from the split.
* **rank**: the best entry is the one with the best mean of the primary metric; every complete
  entry that is not significantly worse than it (p >= 0.05, or a difference in its favour)
  shares rank 1; any other entry ranks ``1 +`` the number of entries with a better mean. There is
  no correction for the number of entries compared.

:func:`paired_difference` is also what ``leaderboard compare`` reports when both sides of an
entry ran the same pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

ALPHA = 0.05
TEST = "paired t-test, two-sided (scipy.stats.ttest_rel)"
CI_DOC = (
    "95 % confidence interval of the mean: mean +- t(0.975, n-1) * std / sqrt(n) (Student's t); "
    "null when n < 2"
)
PAIRED_DOC = (
    "paired: the difference entry - best entry over the runs both made with the same split and "
    "training seed (mean, 95 % t interval of the mean difference, two-sided paired t-test "
    "p-value, scipy.stats.ttest_rel); entries not significantly worse than the best (p >= 0.05) "
    "share rank 1, others rank 1 + the number of entries with a better mean; no correction for "
    "multiple comparisons"
)


def pair_key(run: dict[str, Any]) -> str:
    """What pairs two runs of different entries: split id, training seed (and trial)."""
    trial = run.get("trial")
    return f"{run['split_id']}#seed-{run['seed']}" + (
        f"#trial-{trial}" if trial is not None else ""
    )


def t_quantile(n: int) -> float:
    """t_{0.975, n - 1}."""
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def ci95(values: Sequence[float]) -> list[float] | None:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return None
    half = t_quantile(arr.size) * float(arr.std(ddof=1)) / math.sqrt(arr.size)
    mean = float(arr.mean())
    return [mean - half, mean + half]


def values_by_pair(runs: Sequence[dict[str, Any]], metric: str) -> dict[str, float]:
    return {pair_key(r): float(r["metrics"][metric]) for r in runs if metric in r["metrics"]}


def paired_difference(a: dict[str, float], b: dict[str, float]) -> dict[str, Any] | None:
    """a - b over the pairs both have: n, mean, std, 95 % CI, paired t-test p (None: < 2)."""
    keys = sorted(set(a) & set(b))
    if len(keys) < 2:
        return None
    d = np.asarray([a[k] - b[k] for k in keys], dtype=np.float64)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if np.all(d == 0):
        p = 1.0
    elif sd == 0:
        p = 0.0
    else:
        from scipy import stats

        p = float(stats.ttest_rel([a[k] for k in keys], [b[k] for k in keys]).pvalue)
    half = t_quantile(d.size) * sd / math.sqrt(d.size)
    return {
        "n": int(d.size),
        "mean": mean,
        "std": sd,
        "ci95": [mean - half, mean + half],
        "p_value": p,
        "test": TEST,
    }


def _short(keys) -> str:
    keys = [k.replace("#seed-", " seed ").replace("#trial-", " trial ") for k in sorted(keys)]
    return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")


def pairing_problems(board: dict[str, Any]) -> list[tuple[int, str]]:
    """(entry index, what is wrong) for a paired board whose entries cannot be compared pair by
    pair: a (split, seed) pair recorded twice in one entry, or complete measured entries that did
    not run the same pairs (a difference or a test over some of the pairs, or none, would rank
    them by something else than what the board says)."""
    out: list[tuple[int, str]] = []
    sets: list[tuple[int, frozenset[str]]] = []
    for i, e in enumerate(board.get("entries", [])):
        if not (isinstance(e, dict) and e.get("measured")):
            continue
        keys = [pair_key(r) for r in e.get("runs", [])]
        dups = sorted({k for k in keys if keys.count(k) > 1})
        if dups:
            out.append((i, f"pair(s) {_short(dups)} recorded more than once in this entry; "
                           "expected one run per (split, seed)"))  # fmt: skip
        if e.get("complete"):
            sets.append((i, frozenset(keys)))
    if sets:
        # the pairs most complete entries share are the reference; name what the others differ by
        counts: dict[frozenset[str], int] = {}
        for _, ks in sets:
            counts[ks] = counts.get(ks, 0) + 1
        ref = max(counts, key=lambda ks: (counts[ks], len(ks), sorted(ks)))
        for i, ks in sets:
            if ks != ref:
                parts = []
                if ks - ref:
                    parts.append(f"ran {_short(ks - ref)}, which the other entries did not")
                if ref - ks:
                    parts.append(f"has no run of {_short(ref - ks)}, which the other entries ran")
                out.append((i, f"{' and '.join(parts)}; expected every complete entry of a "
                               "paired board on the same (split, seed) pairs"))  # fmt: skip
    return out


def rank_board(board: dict[str, Any]) -> None:
    """Fill ``rank`` and ``paired`` of every complete measured entry of a paired board."""
    primary, direction = board["primary"], board["direction"]
    sign = 1.0 if direction == "max" else -1.0
    ranked = [e for e in board["entries"] if e["measured"] and e["complete"]]
    if not ranked:
        return
    means = [sign * e["metrics"][primary]["mean"] for e in ranked]
    best = ranked[int(np.argmax(means))]
    best_values = values_by_pair(best["runs"], primary)
    for e, m in zip(ranked, means, strict=True):
        if e is best:
            e["paired"] = {"against": best["key"], "best": True, "metric": primary}
            e["rank"] = 1
            continue
        diff = paired_difference(values_by_pair(e["runs"], primary), best_values)
        worse = diff is not None and sign * diff["mean"] < 0 and diff["p_value"] < ALPHA
        e["paired"] = {
            "against": best["key"],
            "best": False,
            "metric": primary,
            "difference": diff,
            "significantly_worse": bool(worse) if diff is not None else None,
        }
        e["rank"] = 1 + sum(other > m for other in means) if worse or diff is None else 1
