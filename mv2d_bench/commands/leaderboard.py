"""``mv2d-bench leaderboard build|validate|render|compare|publish``."""

from __future__ import annotations

import argparse
import json
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
given. Anyone can then check the published numbers with:

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
        "config).",
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


def _build(args) -> int:
    out = Path(args.out)
    lb = _do_build(args, out, args.references or [])
    print(_summary(lb, out))
    return 0


def _validate(args) -> int:
    from mv2d_bench.leaderboards.validate import validate_paths

    violations, counts = validate_paths(args.files, require_complete=args.require_complete)
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
    lb = _load_json(args.file)
    _require_valid_leaderboard(lb, str(path))
    plots_dir = Path(args.plots_dir) if args.plots_dir else None
    plots = _render_to(lb, path, args.format, Path(args.out), args, plots_dir)
    print(f"wrote {args.out}" + (f" ({len(plots)} plot(s))" if plots else ""))
    return 0


def _require_valid_leaderboard(lb: dict, file: str) -> None:
    from mv2d_bench.leaderboards.schema import check

    problems = check(lb, "leaderboard", file)
    if problems:
        lines = "\n  ".join(str(v) for v in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{file} is not a valid leaderboard:\n  {lines}{more}")


def _compare(args) -> int:
    from mv2d_bench.leaderboards.compare import compare, format_text

    a, b = _load_json(args.a), _load_json(args.b)
    _require_valid_leaderboard(a, args.a)
    _require_valid_leaderboard(b, args.b)
    result = compare(a, b)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        sys.stdout.write(format_text(result, args.a, args.b))
    return 0


def _publish(args) -> int:
    from mv2d_bench.leaderboards import board as B
    from mv2d_bench.leaderboards.validate import leaderboard_violations

    out_dir = Path(args.out)
    refs = args.references
    if refs is None:
        refs = [str(p) for p in sorted((out_dir / "references").glob("*.json"))]
    lb_path = out_dir / f"{args.name}.json"
    records = B.load_records(args.dirs)
    if args.benchmark:
        records = [r for r in records if r.data.get("benchmark", {}).get("name") in args.benchmark]
    if not records:
        raise ValueError(f"no run records under {', '.join(args.dirs)} (expected *-<run_id>.json)")
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
    keep = {p.name for p in plots}
    for old in plots_dir.glob("*.png") if plots_dir.is_dir() else []:
        if old.name not in keep:
            old.unlink()
    print(_summary(lb, lb_path))
    if not args.no_copy_records:
        print(f"copied {len(records)} run record(s) to {out_dir / 'records'}")
    print(f"wrote {out_dir / 'README.md'} ({len(plots)} plot(s) in {plots_dir})")
    print(f"wrote {out_dir / 'index.html'}")
    return 0


def _copy_records(records: list, dest: Path) -> list:
    """Copy the records (and their saved embeddings) into ``dest`` so that the published folder
    can be checked on its own; remove records and embeddings there that are not in this set.
    Returns the records as loaded from their copies."""
    import shutil

    from mv2d_bench.leaderboards.board import Loaded
    from mv2d_bench.leaderboards.records import (
        ARTIFACT_EMBEDDINGS,
        RECORD_NAME_RE,
        atomic_write_text,
    )

    dest.mkdir(parents=True, exist_ok=True)
    copies, keep = [], set()
    for item in records:
        target = dest / item.path.name
        text = item.path.read_text(encoding="utf-8")
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            atomic_write_text(target, text)
        keep.add(target.resolve())
        art = (item.data.get("artifacts") or {}).get(ARTIFACT_EMBEDDINGS)
        if isinstance(art, str):
            src, dst = item.path.parent / art, (dest / art).resolve()
            if src.is_file() and dst.is_relative_to(dest.resolve()):
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                keep.add(dst)
        copies.append(Loaded(target, item.data))
    for old in dest.rglob("*"):
        stale = RECORD_NAME_RE.match(old.name) or old.suffix == ".npz"
        if old.is_file() and stale and old.resolve() not in keep:
            old.unlink()
    return copies
