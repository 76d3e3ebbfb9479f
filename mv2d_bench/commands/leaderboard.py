"""``mv2d-bench leaderboard build|validate|render|compare|publish``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DESCRIPTION = """\
Leaderboards are built only from run records (one JSON file per finished run, written by
`mv2d-bench run` / `suite`) and checked against the JSON Schemas shipped with the package.

  build     aggregate records per (benchmark, protocol, objective + params, model, config,
            split) into mean, sample std (ddof=1) and n; rank complete entries per board
  validate  check leaderboards and run records against the schema and protocol rules
  render    Markdown table or one static HTML page, with PNG plots
  compare   what changed between two leaderboards, and whether it exceeds the seeds' spread
  publish   build + validate + render into one folder (the committed leaderboards/)
"""

PUBLISH_EPILOG = """\
The published leaderboards are regenerated with:

  scripts/publish_leaderboards.sh        (runs the suite, then the command below)
  mv2d-bench leaderboard publish RUNS_DIR -o leaderboards

which writes leaderboards/<name>.json, leaderboards/README.md (+ plots/*.png),
leaderboards/index.html (self-contained) and leaderboards/records/ (the run records behind every
number). Reference rows are read from leaderboards/references/*.json unless --references is
given. publish never deletes a file it did not write: with --benchmark the other benchmarks' boards
(and their records) are kept, --no-plots keeps the existing plots, and records or plots an
earlier publish wrote that are no longer used are listed and kept unless --prune is given
(OUT/.published.json lists what publish wrote). Anyone can then check the published numbers
with:

  mv2d-bench leaderboard validate leaderboards
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="build, validate, render, compare and publish leaderboards",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    b = lsub.add_parser(
        "build",
        help="aggregate run records into a leaderboard JSON",
        description="Aggregate the run records under DIR... (files named as the writer names "
        "them; files given directly are read as records) into a leaderboard. Every record is "
        "checked first; any violation stops the build and is listed. Records of different "
        "protocol versions or splits are never averaged together.",
    )
    b.add_argument(
        "dirs", nargs="+", metavar="DIR", help="folders of run records (or record files)"
    )
    b.add_argument("-o", "--out", required=True, metavar="FILE", help="leaderboard JSON to write")
    _common_build_args(b)
    b.set_defaults(func=_build)

    v = lsub.add_parser(
        "validate",
        help="check leaderboards and run records (exit 1 listing every violation)",
        description="Check leaderboards, run records (folders: the records under them) and "
        "reference-rows files against the shipped JSON Schemas and the protocol rules: seed and "
        "trial counts, metric ranges, mean/std against the values, ranking, duplicated run ids, "
        "consistent splits, protocol versions. Exits 1 listing every violation as "
        "FILE: JSON-PATH: what was expected.",
    )
    v.add_argument("files", nargs="+", metavar="FILE", help="leaderboard/record files or folders")
    v.add_argument(
        "--require-complete",
        action="store_true",
        help="also count entries (and record groups) with too few seeds/trials as violations",
    )
    v.add_argument("--json", action="store_true", help="print violations as a JSON list")
    v.set_defaults(func=_validate)

    r = lsub.add_parser(
        "render",
        help="render a leaderboard as Markdown or a static HTML page, with PNG plots",
        description="Markdown: a table per board, plots written as PNG files beside it (in "
        "--plots-dir, default OUT's folder/plots) and linked. HTML: one self-contained page "
        "(inline CSS, plots embedded as data: URIs, nothing loaded from the network).",
    )
    r.add_argument("file", metavar="FILE", help="leaderboard JSON")
    r.add_argument("--format", choices=("md", "html"), required=True)
    r.add_argument("-o", "--out", required=True, metavar="OUT", help="file to write")
    _render_args(r)
    r.set_defaults(func=_render)

    c = lsub.add_parser(
        "compare",
        help="what changed between two leaderboards, per entry",
        description="Per entry: the change of each metric's mean (B - A), whether it exceeds "
        "the seeds' spread (|delta| > the larger sample std of the two sides; Welch's t-test "
        "p-value when both have values), and what else changed (runs, rank, completeness, "
        "config). When both sides of an entry ran the same (split, seed) pairs (as under "
        "mvc/accuracy@2), the change is also paired by (split, seed): the mean of B - A over "
        "the pairs, its 95 % CI and the paired t-test p-value, the statistics the leaderboard "
        "itself uses.",
    )
    c.add_argument("a", metavar="A", help="the older leaderboard JSON")
    c.add_argument("b", metavar="B", help="the newer leaderboard JSON")
    c.add_argument("--json", action="store_true", help="print a JSON object")
    c.set_defaults(func=_compare)

    pub = lsub.add_parser(
        "publish",
        help="build, validate and render into a folder (the committed leaderboards/)",
        description="Build the leaderboard of the records under RUNS..., validate it, and write "
        "OUT/<name>.json, OUT/README.md with OUT/plots/*.png, OUT/index.html, and a copy of "
        "the records (with saved embeddings) in OUT/records, so that `mv2d-bench leaderboard "
        "validate OUT` checks every published number against its record.",
        epilog=PUBLISH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pub.add_argument("dirs", nargs="+", metavar="RUNS", help="folders of run records")
    pub.add_argument(
        "-o", "--out", default="leaderboards", metavar="DIR", help="default: %(default)s"
    )
    pub.add_argument(
        "--name", default="mvc", help="leaderboard file name stem (default: %(default)s)"
    )
    pub.add_argument(
        "--require-complete",
        action="store_true",
        help="fail when an entry has fewer seeds/trials than its protocol requires",
    )
    pub.add_argument(
        "--prune",
        action="store_true",
        help="remove records and plots that an earlier publish wrote into OUT and this "
        "leaderboard no longer uses (default: keep them and say so); files publish did not "
        "write are never removed",
    )
    pub.add_argument(
        "--no-copy-records",
        action="store_true",
        help="do not copy the run records into OUT/records (the leaderboard then points at RUNS)",
    )
    _common_build_args(pub)
    _render_args(pub, plots_dir=False)
    pub.set_defaults(func=_publish)


def _common_build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--references",
        action="append",
        default=None,
        metavar="FILE",
        help="reference-rows JSON (paper numbers, shown with measured: false); repeatable",
    )
    p.add_argument(
        "--benchmark",
        action="append",
        default=None,
        metavar="NAME",
        help="keep only this benchmark (repeatable; default: every benchmark in the records)",
    )


def _render_args(p: argparse.ArgumentParser, plots_dir: bool = True) -> None:
    if plots_dir:
        p.add_argument("--plots-dir", metavar="DIR", help="where Markdown's PNGs go")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.add_argument(
        "--projection",
        choices=("tsne", "pca"),
        default="tsne",
        help="2-D projection of saved test embeddings (default: %(default)s)",
    )


def _load_json(path: str) -> dict:
    from mv2d_bench.leaderboards.records import read_record

    return read_record(path)


def _summary(lb: dict, path: Path) -> str:
    lines = [f"wrote {path}"]
    for board in lb["boards"]:
        ents = board["entries"]
        measured = [e for e in ents if e["measured"]]
        done = sum(e["complete"] for e in measured)
        lines.append(
            f"  {board['benchmark']} / {board['protocol']}: {len(measured)} measured entries "
            f"({done} complete, {len(measured) - done} incomplete), "
            f"{len(ents) - len(measured)} reference rows"
        )
    return "\n".join(lines)


def _do_build(args, out: Path, references: list[str]) -> dict:
    from mv2d_bench.leaderboards import board as B

    records = B.load_records(args.dirs)
    if not records:
        raise ValueError(f"no run records under {', '.join(args.dirs)} (expected *-<run_id>.json)")
    refs = B.load_references(references)
    lb = B.build(records, refs, out_path=out, benchmarks=args.benchmark)
    B.write_leaderboard(lb, out)
    return lb


def _file_out(path: str) -> Path:
    """``-o/--out`` of a command that writes one file: refused before any work when a folder."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{out}: -o/--out is a folder; expected the path of the file to write")
    return out


def _build(args) -> int:
    out = _file_out(args.out)
    lb = _do_build(args, out, args.references or [])
    print(_summary(lb, out))
    return 0


def _validate(args) -> int:
    from mv2d_bench.leaderboards.validate import validate_paths

    violations, counts = validate_paths(args.files, require_complete=args.require_complete)
    if not counts:
        from mv2d_bench.cli import CliError

        if violations:  # only missing paths: say which
            raise CliError("; ".join(str(v) for v in violations) + "; checked nothing")
        raise CliError(
            f"{', '.join(args.files)}: no leaderboard, run record or reference-rows file found; "
            "checked nothing (expected *.json leaderboards or records named "
            "<benchmark>-<objective>-s<seed>-<run_id>.json)"
        )
    if args.json:
        print(json.dumps([v.as_dict() for v in violations], indent=2))
    else:
        for v in violations:
            print(v)
    checked = ", ".join(f"{n} {k}(s)" for k, n in sorted(counts.items())) or "nothing"
    if violations:
        files = len({v.file for v in violations})
        print(
            f"{len(violations)} violation(s) in {files} file(s); checked {checked}", file=sys.stderr
        )
        return 1
    print(f"ok: checked {checked}", file=sys.stderr)
    return 0


def _render_to(lb: dict, lb_path: Path, fmt: str, out: Path, args, plots_dir: Path | None) -> list:
    from mv2d_bench.leaderboards import render as R
    from mv2d_bench.leaderboards.records import atomic_write_text

    plots, notes = ([], [])
    if not args.no_plots:
        plots, notes = R.make_plots(lb, lb_path.parent, args.projection)
    if fmt == "md":
        folder = plots_dir or out.parent / "plots"
        links = R.write_plots(plots, folder, out.parent) if plots else {}
        text = R.markdown(lb, links)
    else:
        text = R.html(lb, R.embedded(plots))
    atomic_write_text(out, text)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    return plots


def _render(args) -> int:
    path = Path(args.file)
    out = _file_out(args.out)
    lb = _load_json(args.file)
    _require_valid_leaderboard(lb, str(path))
    plots_dir = Path(args.plots_dir) if args.plots_dir else None
    plots = _render_to(lb, path, args.format, out, args, plots_dir)
    print(f"wrote {args.out}" + (f" ({len(plots)} plot(s))" if plots else ""))
    return 0


def _require_valid_leaderboard(lb: dict, file: str) -> None:
    """Render and compare only what validates: the schema and every protocol rule (values in
    range, means and stds that match the values, ranks, run records that agree where they are
    at hand). Records that are not at hand are noted, not required."""
    from mv2d_bench.leaderboards.validate import leaderboard_violations, missing_run_records

    problems = leaderboard_violations(lb, file, require_records=False)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(
            f"{problems[0]}{more}; not a valid leaderboard - see "
            f"'mv2d-bench leaderboard validate {file}'"
        )
    missing = missing_run_records(lb, file)
    if missing:
        print(
            f"note: {file}: {missing} run record(s) are not at hand, so its numbers were checked "
            "for consistency only (leaderboard validate BOARD RECORDS_DIR checks them against "
            "their records)",
            file=sys.stderr,
        )


def _compare(args) -> int:
    from mv2d_bench.leaderboards.compare import compare, format_text

    a, b = _load_json(args.a), _load_json(args.b)
    _require_valid_leaderboard(a, args.a)
    _require_valid_leaderboard(b, args.b)
    result = compare(a, b)
    if args.json:
        print(json.dumps(_finite(result), indent=2, allow_nan=False))
    else:
        sys.stdout.write(format_text(result, args.a, args.b))
    return 0


def _finite(obj):
    """``obj`` with every non-finite float as None (JSON has no NaN or infinity)."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _publish(args) -> int:
    from mv2d_bench.leaderboards import board as B
    from mv2d_bench.leaderboards.validate import leaderboard_violations

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: -o/--out is a file; expected the folder to publish into")
    refs = args.references
    if refs is None:
        refs = [str(p) for p in sorted((out_dir / "references").glob("*.json"))]
    lb_path = out_dir / f"{args.name}.json"
    previous = _previous(lb_path)
    records = B.load_records(args.dirs)
    if args.benchmark:
        records = [r for r in records if r.data.get("benchmark", {}).get("name") in args.benchmark]
    if not records:
        raise ValueError(f"no run records under {', '.join(args.dirs)} (expected *-<run_id>.json)")
    if args.benchmark and previous is not None:
        records += _kept_boards(previous, lb_path, set(args.benchmark), records)
    references = B.load_references(refs)
    lb = B.build(records, references, out_path=lb_path)  # checks every record first
    if args.require_complete:
        from mv2d_bench.leaderboards.validate import incomplete_entries

        problems = incomplete_entries(lb, str(lb_path))
        if problems:
            for v in problems:
                print(v)
            print(f"{len(problems)} incomplete entries; nothing written", file=sys.stderr)
            return 1
    if not args.no_copy_records:
        records = _copy_records(records, out_dir / "records")
        lb = B.build(records, references, out_path=lb_path)
    violations = leaderboard_violations(lb, str(lb_path))
    if violations:
        for v in violations:
            print(v)
        print(f"{len(violations)} violation(s) in {lb_path}; not written", file=sys.stderr)
        return 1
    B.write_leaderboard(lb, lb_path)
    plots_dir = out_dir / "plots"
    plots = _render_to(lb, lb_path, "md", out_dir / "README.md", args, plots_dir)
    _render_to(lb, lb_path, "html", out_dir / "index.html", args, None)
    print(_summary(lb, lb_path))
    if not args.no_copy_records:
        print(f"copied {len(records)} run record(s) to {out_dir / 'records'}")
    print(f"wrote {out_dir / 'README.md'} ({len(plots)} plot(s) in {plots_dir})")
    print(f"wrote {out_dir / 'index.html'}")
    _unused(lb, lb_path, previous, plots, plots_dir, args)
    return 0


def _previous(lb_path: Path) -> dict | None:
    """The leaderboard published at ``lb_path`` before (None when there is none); one that
    cannot be read is an error: publishing over it would lose what it holds."""
    if not lb_path.exists():
        return None
    data = _load_json(str(lb_path))
    if not isinstance(data.get("boards"), list):
        raise ValueError(
            f"{lb_path}: field 'boards': expected the leaderboard published here, found none; "
            "move the file away or pass another --name"
        )
    return data


def _referenced(lb: dict, lb_path: Path) -> dict[Path, str]:
    """Resolved path -> benchmark of every record (and embeddings file) ``lb`` points at."""
    out: dict[Path, str] = {}
    for board in lb.get("boards", []):
        for e in board.get("entries", []):
            for run in e.get("runs", []) if isinstance(e, dict) else []:
                rel = run.get("record") if isinstance(run, dict) else None
                if isinstance(rel, str):
                    out[(lb_path.parent / rel).resolve()] = board.get("benchmark")
                for art in (run.get("artifacts") or {}).values():
                    if isinstance(art, str) and art.endswith(".npz"):
                        out[(lb_path.parent / art).resolve()] = board.get("benchmark")
    return out


def _kept_boards(previous: dict, lb_path: Path, chosen: set[str], records: list) -> list:
    """With --benchmark: the records behind the previous leaderboard's other benchmarks, so
    that publishing one benchmark keeps the others (their records must still be there)."""
    from mv2d_bench.leaderboards.board import Loaded
    from mv2d_bench.leaderboards.records import read_record

    have = {r.path.resolve() for r in records}
    kept = []
    for path, bench in _referenced(previous, lb_path).items():
        if bench in chosen or path.suffix != ".json" or path in have:
            continue
        if not path.is_file():
            raise ValueError(
                f"{lb_path}: board {bench}: its run record {path} is gone; expected it to keep "
                f"that board (publish without --benchmark, or restore the record)"
            )
        kept.append(Loaded(path, read_record(path)))
        have.add(path)
    if kept:
        print(f"kept {len(kept)} run record(s) of the other benchmarks of {lb_path}")
    return kept


def _unused(lb: dict, lb_path: Path, previous: dict | None, plots, plots_dir: Path, args) -> None:
    """Files in the published folder that this leaderboard does not use: listed, kept, and with
    --prune removed when an earlier publish wrote them (listed in OUT/.published.json, or
    pointed at by the previous leaderboard). Nothing else is ever deleted."""
    from mv2d_bench.leaderboards.records import RECORD_NAME_RE

    used = set(_referenced(lb, lb_path))
    manifest = _Manifest(lb_path.parent)
    published = manifest.files | (set(_referenced(previous, lb_path)) if previous else set())
    records_dir = (lb_path.parent / "records").resolve()
    stale = []
    if records_dir.is_dir():
        for f in sorted(records_dir.rglob("*")):
            named = RECORD_NAME_RE.match(f.name) or f.suffix == ".npz"
            if f.is_file() and named and f.resolve() not in used:
                stale.append(f)
    made = {p.name for p in plots}
    old_plots = [] if args.no_plots or not plots_dir.is_dir() else [
        f for f in sorted(plots_dir.glob("*.png")) if f.name not in made
    ]  # fmt: skip
    manifest.add(used | {(plots_dir / p.name).resolve() for p in plots})
    if not args.prune:
        if stale or old_plots:
            print(
                f"note: {len(stale)} record(s) and {len(old_plots)} plot(s) in "
                f"{lb_path.parent} are not used by this leaderboard; kept (--prune removes "
                "the ones an earlier publish wrote)",
                file=sys.stderr,
            )
        return
    removed = []
    for f in stale + old_plots:
        if f.resolve() in published:
            f.unlink()
            removed.append(f.resolve())
    manifest.forget(removed)
    left = len(stale) + len(old_plots) - len(removed)
    removed = len(removed)
    print(
        f"pruned {removed} file(s) an earlier publish wrote"
        + (f"; kept {left} it did not write" if left else "")
    )


class _Manifest:
    """``OUT/.published.json``: every file ``publish`` wrote into OUT (records, embeddings,
    plots), so that --prune removes only those, never a file someone else put there."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.path = folder / ".published.json"
        self.files: set[Path] = set()
        if self.path.is_file():
            try:
                listed = json.loads(self.path.read_text(encoding="utf-8")).get("files", [])
            except (OSError, ValueError, AttributeError):
                listed = []
            self.files = {(self.folder / f).resolve() for f in listed if isinstance(f, str)}

    def add(self, paths) -> None:
        self.files |= {p for p in paths if p.is_relative_to(self.folder) and p.is_file()}
        self._write()

    def forget(self, paths) -> None:
        self.files -= set(paths)
        self._write()

    def _write(self) -> None:
        from mv2d_bench.leaderboards.records import atomic_write_text

        rel = sorted(str(p.relative_to(self.folder)) for p in self.files if p.is_file())
        atomic_write_text(self.path, json.dumps({"files": rel}, indent=1) + "\n")


def _copy_records(records: list, dest: Path) -> list:
    """Copy the records (and their saved embeddings) into ``dest`` so that the published folder
    can be checked on its own. Files already there are never deleted or replaced by other
    content (a record's name is its content id). Returns the records as loaded from their
    copies."""
    import shutil

    from mv2d_bench.leaderboards.board import Loaded
    from mv2d_bench.leaderboards.records import ARTIFACT_EMBEDDINGS, atomic_write_text

    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for item in records:
        target = dest / item.path.name
        if target.resolve() != item.path.resolve():
            text = item.path.read_text(encoding="utf-8")
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                atomic_write_text(target, text)
        art = (item.data.get("artifacts") or {}).get(ARTIFACT_EMBEDDINGS)
        if isinstance(art, str):
            src, dst = (item.path.parent / art).resolve(), (dest / art).resolve()
            if src.is_file() and dst.is_relative_to(dest.resolve()) and src != dst:
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(f".{dst.name}.tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
        copies.append(Loaded(target, item.data))
    return copies
