"""Render a leaderboard: a Markdown table, one static HTML page (inline CSS, images embedded as
``data:`` URIs, nothing fetched from the network) and PNG plots drawn with matplotlib's Agg canvas:

* per board, every entry's primary metric with its std as an error bar (reference rows as
  diamonds without bars, incomplete entries hollow);
* accuracy against ``z_dim`` when a board holds entries that differ only in ``z_dim`` (a sweep,
  the paper's Figure 10);
* a 2-D projection (t-SNE, or PCA) of the test embeddings of a run that saved them (record
  artifact ``embeddings``, see the records module; the paper's Figures 9 and 10).
"""

from __future__ import annotations

import base64
import html as _html
import io
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mv2d_bench.leaderboards.records import ARTIFACT_EMBEDDINGS, EMBEDDING_KEYS

MAX_POINTS = 2000


@dataclass
class Plot:
    board: int
    kind: str  # "entries", "zdim" or "embedding"
    title: str
    png: bytes
    name: str


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def board_title(board: dict[str, Any]) -> str:
    return f"{board['benchmark']} — {board['protocol']}"


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def stat_text(stat: dict[str, Any], digits: int = 2) -> str:
    text = fmt(stat.get("mean"), digits)
    if stat.get("std") is not None:
        text += f" ± {fmt(stat['std'], digits)}"
    return text


def status_text(entry: dict[str, Any]) -> str:
    if not entry["measured"]:
        return "reference (not measured here)"
    if entry["complete"]:
        return "complete"
    return f"incomplete: {entry.get('incomplete_reason') or 'too few runs'}"


def _metric_header(m: dict[str, Any]) -> str:
    unit = f" ({m['unit']})" if m.get("unit") else ""
    arrow = "↑" if m["direction"] == "max" else "↓"
    return f"{m['name']}{unit} {arrow}"


def ci_text(stat: dict[str, Any], digits: int = 2) -> str:
    """``mean ± std [lo, hi]`` (the 95 % CI, where the board reports one)."""
    text = stat_text(stat, digits)
    ci = stat.get("ci95")
    return text + (f" [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]" if ci else "")


def paired_cells(entry: dict[str, Any]) -> list[str]:
    """``difference to the best [95 % CI]`` and the paired p-value of a paired board's entry."""
    pd = entry.get("paired") if entry.get("measured") else None
    if not pd:
        return ["–", "–"]
    if pd.get("best"):
        return ["best", "–"]
    diff = pd.get("difference")
    if not diff:
        return ["not paired", "–"]
    lo, hi = diff["ci95"]
    return [f"{diff['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}]", f"{diff['p_value']:.3g}"]


def rows(board: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a board's table (all entries, in board order). A paired board
    (mvc/accuracy@2) also shows the 95 % CI of every metric and, for the primary metric, each
    entry's paired difference to the best entry with its 95 % CI and paired t-test p-value."""
    metrics = board["metrics"]
    is_paired = board.get("statistics") == "paired"
    header = ["Rank", "Entry", *(_metric_header(m) for m in metrics)]
    if is_paired:
        header += [f"Δ {board['primary']} vs best [95 % CI]", "p (paired t)"]
    header += ["n", "Seeds", "Status", "Source"]
    out = []
    for e in board["entries"]:
        cells = [str(e["rank"]) if e.get("rank") else "–", e["label"]]
        for m in metrics:
            stat = e["metrics"].get(m["name"])
            cells.append((ci_text(stat) if is_paired else stat_text(stat)) if stat else "–")
        if is_paired:
            cells += paired_cells(e)
        if e["measured"]:
            cells += [str(e["n"]), ", ".join(map(str, e["seeds"]))]
            source = "measured, " + _provenance(e["runs"])
        else:
            n = next(iter(e["metrics"].values())).get("n")
            cells += [str(n) if n else "–", "–"]
            source = e["source"]
        cells += [status_text(e), source]
        out.append(cells)
    return header, out


def _short_revision(rev: str | None) -> str:
    """12 hex digits, keeping the ``-dirty`` mark of a checkout with uncommitted changes."""
    if not rev:
        return "unknown revision"
    return rev[:12] + ("-dirty" if rev.endswith("-dirty") and len(rev) > 12 else "")


def _provenance(runs: list[dict[str, Any]]) -> str:
    versions = sorted({r["package_version"] for r in runs})
    revs = sorted({_short_revision(r.get("git_revision")) for r in runs})
    rev = revs[0] if len(revs) == 1 else f"{len(revs)} revisions"
    return f"mv2d-bench {', '.join(versions)} ({rev})"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(lb: dict[str, Any], plots: dict[int, list[tuple[str, str]]] | None = None) -> str:
    """The leaderboard as Markdown; ``plots`` maps a board index to (title, relative path)."""
    git = lb["generator"].get("git_revision") or "unknown revision"
    lines = [
        "# mv2d-bench leaderboards",
        "",
        f"Generated {lb['created']} by mv2d-bench {lb['generator']['package_version']} ({git}).",
        "",
        f"Mean: {lb['statistics']['mean']}. Std: {lb['statistics']['std']}. Only complete "
        "entries (the seeds/trials their protocol requires) are ranked; rows marked reference "
        "are published numbers, not measured here.",
        "",
    ]
    for i, board in enumerate(lb["boards"]):
        lines += [f"## {board_title(board)}", ""]
        lines.append(
            f"Ranked by {board['primary']} ({'higher' if board['direction'] == 'max' else 'lower'}"
            f" is better); an entry needs {board['required_seeds']} run(s)"
            + (
                f" covering trials {board['required_trials'][0]}..{board['required_trials'][-1]}"
                if board.get("required_trials")
                else ""
            )
            + (f"; each run is scored over {board['trials']} trials" if board["trials"] > 1 else "")
            + (
                f" on each of {board['required_splits']} splits; mean ± std [95 % CI]; entries "
                "not significantly worse than the best (paired t-test over the (split, seed) "
                "pairs, p >= 0.05) share rank 1"
                if board.get("statistics") == "paired"
                else ""
            )
            + "."
        )
        lines.append("")
        header, body = rows(board)
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for cells in body:
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
        for note in board.get("notes", []):
            lines.append(f"- Note: {note}")
        if board.get("notes"):
            lines.append("")
        for title, rel in (plots or {}).get(i, []):
            lines += [f"![{title}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1d2330; background: #ffffff; }
h1 { border-bottom: 3px solid #2b59c3; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; color: #2b59c3; }
p.meta { color: #5a6272; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: .92rem; }
th, td { border: 1px solid #d4d9e2; padding: .35rem .6rem; text-align: left; }
th { background: #e8eefb; }
tr.reference td { background: #fbf7e8; font-style: italic; }
tr.incomplete td { color: #7a808c; }
tr.rank1 td { background: #e6f5ea; font-weight: 600; }
figure { display: inline-block; vertical-align: top; margin: .5rem 1rem .5rem 0; }
figure img { max-width: 34rem; border: 1px solid #d4d9e2; }
figcaption { font-size: .85rem; color: #5a6272; }
"""


def html(lb: dict[str, Any], plots: dict[int, list[tuple[str, str]]] | None = None) -> str:
    """One self-contained HTML page; ``plots`` maps a board index to (title, image src)."""
    e = _html.escape
    git = lb["generator"].get("git_revision") or "unknown revision"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mv2d-bench leaderboards</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>mv2d-bench leaderboards</h1>",
        f'<p class="meta">Generated {e(lb["created"])} by mv2d-bench '
        f"{e(lb['generator']['package_version'])} ({e(git)}).<br>Mean: "
        f"{e(lb['statistics']['mean'])}. Std: {e(lb['statistics']['std'])}. Only complete "
        "entries are ranked; reference rows are published numbers, not measured here.</p>",
    ]
    for i, board in enumerate(lb["boards"]):
        parts.append(f'<h2 id="{slug(board_title(board))}">{e(board_title(board))}</h2>')
        header, body = rows(board)
        parts.append("<table><thead><tr>")
        parts += [f"<th>{e(h)}</th>" for h in header]
        parts.append("</tr></thead><tbody>")
        for entry, cells in zip(board["entries"], body, strict=True):
            cls = (
                "reference"
                if not entry["measured"]
                else (
                    "rank1" if entry.get("rank") == 1 else "" if entry["complete"] else "incomplete"
                )
            )
            parts.append(
                f'<tr class="{cls}">' + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>"
            )
        parts.append("</tbody></table>")
        for note in board.get("notes", []):
            parts.append(f'<p class="meta">Note: {e(note)}</p>')
        for title, src in (plots or {}).get(i, []):
            parts.append(
                f'<figure><img src="{e(src)}" alt="{e(title)}"><figcaption>{e(title)}'
                "</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- plots ----------------------------------------------------------------------------------------


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def entries_plot(board: dict[str, Any]) -> bytes:
    primary = board["primary"]
    entries = [x for x in board["entries"] if primary in x["metrics"]]
    fig = _figure(6.4, 0.8 + 0.42 * max(len(entries), 1))
    ax = fig.add_subplot()
    for y, x in enumerate(entries):
        stat = x["metrics"][primary]
        if not x["measured"]:
            ax.plot(stat["mean"], y, "D", color="#c48a00", label="reference (paper)")
            continue
        color = "#2b59c3" if x["complete"] else "#8a93a6"
        ax.errorbar(
            stat["mean"],
            y,
            xerr=stat.get("std") or 0.0,
            fmt="o",
            color=color,
            mfc=color if x["complete"] else "white",
            capsize=4,
            label="measured" if x["complete"] else "incomplete",
        )
    ax.set_yticks(range(len(entries)), [x["label"] for x in entries])
    ax.invert_yaxis()
    unit = next((m["unit"] for m in board["metrics"] if m["name"] == primary), "")
    ax.set_xlabel(f"{primary} ({unit}), mean ± std" if unit else f"{primary}, mean ± std")
    ax.set_title(board_title(board), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    if uniq:
        ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="best")
    return _png(fig)


def _find_key(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj and not isinstance(obj[key], (dict, list)):
            return obj[key]
        for v in obj.values():
            found = _find_key(v, key)
            if found is not None:
                return found
    return None


def _without(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return {k: _without(v, key) for k, v in obj.items() if k != key}
    return obj


def zdim_sweeps(board: dict[str, Any]) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    """Label -> [(z_dim, entry)] for measured entries that differ only in z_dim (2+ values)."""
    groups: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    names: dict[str, str] = {}
    for x in board["entries"]:
        if not x["measured"]:
            continue
        z = _find_key(x["model"]["params"], "z_dim") or _find_key(x["config"], "z_dim")
        if not isinstance(z, (int, float)):
            continue
        rest = {
            "objective": x["objective"],
            "model": _without(x["model"]["params"], "z_dim"),
            "config": _without(x["config"], "z_dim"),
        }
        key = json.dumps(rest, sort_keys=True)
        groups[key].append((float(z), x))
        names[key] = x["objective"]["name"]
    out = {}
    for key, items in groups.items():
        if len({z for z, _ in items}) >= 2:
            label = names[key]
            while label in out:
                label += "'"
            out[label] = sorted(items, key=lambda t: t[0])
    return out


def zdim_plot(
    board: dict[str, Any], sweeps: dict[str, list[tuple[float, dict[str, Any]]]]
) -> bytes:
    primary = board["primary"]
    fig = _figure()
    ax = fig.add_subplot()
    for label, items in sweeps.items():
        zs = [z for z, _ in items]
        means = [x["metrics"][primary]["mean"] for _, x in items]
        stds = [x["metrics"][primary].get("std") or 0.0 for _, x in items]
        ax.errorbar(zs, means, yerr=stds, marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ticks = sorted({z for items in sweeps.values() for z, _ in items})
    ax.set_xticks(ticks, [f"{z:g}" for z in ticks])
    ax.minorticks_off()
    ax.set_xlabel("z_dim (bottleneck width)")
    ax.set_ylabel(f"{primary}, mean ± std")
    ax.set_title(f"{board_title(board)}: {primary} vs z_dim", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def load_embeddings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from mv2d_bench.leaderboards.predictions import read_predictions

    data = read_predictions(path, list(EMBEDDING_KEYS))  # a damaged file is named, key by key
    emb, labels = np.asarray(data["embeddings"], np.float64), np.asarray(data["labels"])
    if emb.ndim != 2 or labels.shape != (emb.shape[0],):
        raise ValueError(
            f"{path}: embeddings {emb.shape} and labels {labels.shape}: expected (N, D) and (N,)"
        )
    if not np.all(np.isfinite(emb)):
        raise ValueError(f"{path}: embeddings contain NaN or inf")
    return emb, labels


def project(emb: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2-D coordinates of ``emb`` by t-SNE (sklearn) or PCA."""
    if emb.shape[1] <= 2:
        return np.pad(emb, ((0, 0), (0, 2 - emb.shape[1])))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(emb)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (emb.shape[0] - 1) / 3.0)))
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        ).fit_transform(emb)
    raise ValueError(f"unknown projection {method!r}; expected 'tsne' or 'pca'")


def embedding_plot(emb: np.ndarray, labels: np.ndarray, title: str, method: str) -> bytes:
    if emb.shape[0] > MAX_POINTS:
        keep = np.sort(np.random.default_rng(0).choice(emb.shape[0], MAX_POINTS, replace=False))
        emb, labels = emb[keep], labels[keep]
    xy = project(emb, method)
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot()
    classes = np.unique(labels)
    from matplotlib import colormaps

    cmap = colormaps["tab20" if classes.size > 10 else "tab10"]
    for i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(i % cmap.N), label=str(c))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if classes.size <= 21:
        ax.legend(fontsize=6, markerscale=2, ncols=2 if classes.size > 10 else 1, loc="best")
    return _png(fig)


def make_plots(
    lb: dict[str, Any], base: str | os.PathLike | None, projection: str = "tsne"
) -> tuple[list[Plot], list[str]]:
    """Every plot of the leaderboard, and notes on artifacts that could not be read. ``base`` is
    the folder the leaderboard's relative artifact paths start from."""
    base = Path(base) if base is not None else Path.cwd()
    plots: list[Plot] = []
    notes: list[str] = []
    for i, board in enumerate(lb["boards"]):
        stem = slug(f"{board['benchmark']}-{board['protocol']}")
        if any(board["primary"] in x["metrics"] for x in board["entries"]):
            plots.append(
                Plot(i, "entries", f"{board_title(board)}: {board['primary']} per entry",
                     entries_plot(board), f"{stem}-entries.png")
            )  # fmt: skip
        sweeps = zdim_sweeps(board)
        if sweeps:
            plots.append(
                Plot(i, "zdim", f"{board_title(board)}: {board['primary']} against z_dim",
                     zdim_plot(board, sweeps), f"{stem}-zdim.png")
            )  # fmt: skip
        for x in board["entries"]:
            if not x["measured"]:
                continue
            run = next(
                (r for r in x["runs"] if ARTIFACT_EMBEDDINGS in r.get("artifacts", {})), None
            )
            if run is None:
                continue
            path = base / run["artifacts"][ARTIFACT_EMBEDDINGS]
            try:
                emb, labels = load_embeddings(path)
            except (OSError, ValueError) as exc:
                notes.append(f"{x['label']}: embeddings not plotted ({exc})")
                continue
            title = (
                f"{board['benchmark']} {x['label']}, seed {run['seed']}: test embeddings "
                f"({projection.upper() if projection == 'pca' else 't-SNE'})"
            )
            name = f"{stem}-{slug(x['label'])}-{x['key'][:6]}-embedding.png"
            plots.append(
                Plot(i, "embedding", title, embedding_plot(emb, labels, title, projection), name)
            )
    return plots, notes


def write_plots(
    plots: list[Plot], folder: Path, relative_to: Path
) -> dict[int, list[tuple[str, str]]]:
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for p in plots:
        target = folder / p.name
        _atomic_write_bytes(target, p.png)
        out[p.board].append((p.title, os.path.relpath(target, relative_to).replace(os.sep, "/")))
    return out


def embedded(plots: list[Plot]) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for p in plots:
        out[p.board].append((p.title, "data:image/png;base64," + base64.b64encode(p.png).decode()))
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    import tempfile

    from mv2d_bench.leaderboards.records import _default_mode

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _default_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
