"""``mv2d-bench data verify|inspect|prepare``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="check a benchmark's data root, look inside any .mat/HDF5 file, build caches",
        description="'verify NAME' checks a benchmark's data (structure, view dimensions, sample "
        "and class counts, sha256 against the data card where known) and exits non-zero on any "
        "failed check. 'inspect FILE' shows what a .mat (v5 or v7.3) or HDF5 file holds and how it "
        "reads as multi-view data. 'export NAME' writes a multi-view classification benchmark as "
        "a Hugging Face dataset or parquet files. 'prepare NAME' builds the benchmark's cache, "
        "if it has one.",
    )
    dsub = p.add_subparsers(dest="action", metavar="{verify,inspect,export,prepare}", required=True)

    vp = dsub.add_parser("verify", help="check a benchmark's data against its data card")
    vp.add_argument("name", help="benchmark name (see 'mv2d-bench benchmarks list')")
    _root_options(vp)
    vp.add_argument("--json", action="store_true", help="print the report as JSON")
    vp.set_defaults(func=_verify)

    ip = dsub.add_parser("inspect", help="variables, views, dims, samples, classes of a file")
    ip.add_argument("file", type=Path, help="a .mat (v5 or v7.3) or HDF5 file")
    ip.add_argument(
        "--views-key",
        help="the cell of views (default: detected - a cell X, data or fea; per-view variables "
        "x1.., X1.. or view_*; or a predefined split x1_train/x1_test.. or X_train/X_test)",
    )
    ip.add_argument(
        "--labels-key",
        help="the label vector (default: Y, y or gt; gt_train/gt_test or Y_train/Y_test with a "
        "predefined split)",
    )
    ip.add_argument(
        "--orientation",
        default="auto",
        choices=("auto", "samples-first", "features-first"),
        help="how to read a square view (rows = samples or features)",
    )
    ip.add_argument("--json", action="store_true", help="print the report as JSON")
    ip.set_defaults(func=_inspect)

    ep = dsub.add_parser(
        "export",
        help="write a multi-view classification benchmark as a Hugging Face dataset or parquet",
        description="Write benchmark NAME's data with the protocol's split as a Hugging Face "
        "dataset: --format hf saves a datasets.DatasetDict (save_to_disk; read it back with "
        "datasets.load_from_disk or the 'hf' benchmark), --format parquet writes train.parquet, "
        "validation.parquet and test.parquet. One float32 sequence column per view (named after "
        "the view), 'label' (a ClassLabel with the class names) and 'sample_index' (the row's "
        "position in the benchmark); the split id and sha256, the data sha256, the content "
        "sha256 and the data card go into the dataset's info. Everything is written into a "
        "hidden folder beside DIR and renamed to DIR at the end, so an interrupted export "
        "leaves nothing at DIR. DIR must not exist or be empty. Nothing is downloaded.",
    )
    ep.add_argument("name", help="a multi-view classification benchmark (hand, mvmat, ...)")
    ep.add_argument(
        "--root",
        type=Path,
        help="the data (a file or folder); default: $MV2D_DATA/<benchmark's folder>, then the "
        "benchmark's default location",
    )
    ep.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a benchmark option, e.g. views=pix,fou (see 'mv2d-bench benchmarks show NAME')",
    )
    ep.add_argument("--format", required=True, choices=("hf", "parquet"), dest="fmt")
    ep.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="new folder")
    ep.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the protocol's per-class split (default 0, as data.split_seed)",
    )
    ep.add_argument(
        "--split",
        default="stratified",
        choices=("stratified", "mvnncor"),
        help="the split procedure, as data.split: stratified (default, protocol mvc/accuracy@1) "
        "or mvnncor (MvNNcor's, mvc/accuracy@2); data with its own split keeps it",
    )
    ep.add_argument("--no-progress", action="store_true", help="no progress bar")
    ep.add_argument("--json", action="store_true", help="print the export's metadata as JSON")
    ep.set_defaults(func=_export)

    pp = dsub.add_parser("prepare", help="build the benchmark's cache (atomically)")
    pp.add_argument("name")
    _root_options(pp)
    pp.set_defaults(func=_prepare)


def _root_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        type=Path,
        help="the data (a file or folder); default: $MV2D_DATA/<benchmark's folder>, then the "
        "benchmark's default location",
    )
    p.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a benchmark option, e.g. views=pix,fou (see 'mv2d-bench benchmarks show NAME')",
    )


def parse_options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _open(args) -> Any:
    from mv2d_bench.registry import registry

    cls = registry("benchmarks").load(args.name)
    return cls(root=args.root, **parse_options(args.option))


def _verify(args) -> int:
    try:
        bench = _open(args)
        report = bench.verify()
    except Exception as exc:  # noqa: BLE001 - with --json a failure is JSON too
        return _json_failure(args, exc, {"benchmark": args.name})
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0 if report.get("ok") else 1
    print(f"{args.name}: {report.get('root', bench.root)}")
    for check in report.get("checks", []):
        mark = "skip" if check.get("skipped") else ("ok" if check["ok"] else "FAIL")
        print(f"  {mark:<4}  {check['name']:<28}  {check.get('detail', '')}")
    checks = report.get("checks", [])
    failed = [c for c in checks if not c["ok"]]
    if report.get("ok"):
        print(f"{args.name}: verified ({len(checks)} checks passed)")
        return 0
    print(f"{args.name}: FAILED ({len(failed)} of {len(checks)} checks)")
    return 1


def inspect_file(path: Path, views_key=None, labels_key=None, orientation="auto") -> dict:
    from mv2d_bench.loaders.base import DataError, sha256_file
    from mv2d_bench.loaders.matfile import describe_value, load_variables, read_multiview_mat

    fmt, variables = load_variables(path)
    report: dict[str, Any] = {
        "file": str(path),
        "format": fmt,
        "sha256": sha256_file(path),
        "variables": {k: describe_value(v) for k, v in sorted(variables.items())},
    }
    try:
        data = read_multiview_mat(
            path,
            views_key=views_key,
            labels_key=labels_key,
            orientation=orientation,
            with_sha256=False,
        )
    except DataError as exc:
        report.update(ok=False, error=str(exc))
        return report
    info = data.info
    report.update(
        ok=True,
        samples=data.n_samples,
        classes=data.num_classes,
        class_counts=data.class_counts(),
        layout=info["layout"],
        views_key=info["views_key"],
        labels_key=info["labels_key"],
        cell_shape=info["cell_shape"],
        split=info["split"],
        label_values=info["label_values"],
        views=[
            {
                "field": info["view_fields"][i],
                "dim": d,
                "stored": info["stored"][i],
                "sparse": info["sparse"][i],
            }
            for i, d in enumerate(data.view_dims)
        ],
        ignored_keys=info["ignored_keys"],
    )
    return report


def _json_failure(args, exc: Exception, fields: dict[str, Any]) -> int:
    """With --json, a user-facing error is printed as ``{..., "ok": false, "error": ...}`` on
    standard output (and the one line on standard error), exit 2; otherwise it propagates."""
    import sys

    from mv2d_bench.cli import EXIT_USAGE, PROG, user_error

    message = user_error(exc)
    if not args.json or message is None:
        raise exc
    print(json.dumps({**fields, "ok": False, "error": message}, indent=2))
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _inspect(args) -> int:
    try:
        report = inspect_file(args.file, args.views_key, args.labels_key, args.orientation)
    except Exception as exc:  # noqa: BLE001 - with --json a failure is JSON too
        return _json_failure(args, exc, {"file": str(args.file)})
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 1
    print(f"{report['file']}  ({report['format']}, sha256 {report['sha256'][:16]}...)")
    print("  variables:")
    for name, desc in report["variables"].items():
        shape = "x".join(map(str, desc.get("shape", []))) or "-"
        print(f"    {name:<12} {desc['kind']:<8} {shape:<14} {desc.get('dtype', '')}")
    if not report["ok"]:
        print(f"  not readable as multi-view data: {report['error']}")
        return 1
    if report["cell_shape"] and not report["split"]:
        rows, cols = report["cell_shape"]
        labels = report["labels_key"]
        print(f"  multi-view: {report['views_key']} (cell {rows}x{cols}), labels {labels}")
    else:
        print(f"  multi-view: {report['layout']}")
    print(f"  samples: {report['samples']}   classes: {report['classes']}")
    if report["split"]:
        parts = ", ".join(f"{n} {p}" for p, n in report["split"].items())
        print(f"  predefined split: {parts} (the run's split; validation carved from train)")
    print(f"  class counts: {report['class_counts']}")
    values = report["label_values"]
    if values is not None:
        shown = values if len(values) <= 12 else [*values[:5], "...", *values[-3:]]
        print(f"  label values: {shown} -> 0..{report['classes'] - 1}")
    width = max(8, *(len(v["field"]) for v in report["views"]))
    for v in report["views"]:
        kind = "sparse" if v["sparse"] else "dense"
        print(f"  {v['field']:<{width}} {v['dim']:>7} features  {kind:<6} stored {v['stored']}")
    if report["ignored_keys"]:
        print(f"  ignored: {', '.join(report['ignored_keys'])}")
    return 0


def _export(args) -> int:
    from mv2d_bench.loaders.hf_export import check_output, export
    from mv2d_bench.registry import registry

    check_output(args.output.expanduser())  # before reading any data
    cls = registry("benchmarks").load(args.name)
    if getattr(cls, "family", "") != "mvc":
        raise ValueError(
            f"{args.name}: a {cls.family or '?'} benchmark; only multi-view classification "
            "benchmarks (family mvc) can be exported"
        )
    bench = cls(root=args.root, **parse_options(args.option))
    block = export(
        bench,
        args.output,
        args.fmt,
        split_seed=args.split_seed,
        progress=not args.no_progress,
        procedure=args.split,
    )
    out = args.output.expanduser().absolute()
    if args.json:
        print(json.dumps({"path": str(out), "format": args.fmt, **block}, indent=2))
        return 0
    counts = ", ".join(f"{n} {k}" for k, n in block["split"]["counts"].items())
    views = ", ".join(f"{v['name']} {v['dim']}" for v in block["views"])
    print(f"{args.name}: {block['n_samples']} samples ({counts}), views {views}")
    print(f"  split {block['split']['split_id']}  sha256 {block['split']['sha256']}")
    print(f"  content sha256 {block['content_sha256']}  (data sha256 {block['data_sha256']})")
    print(out)
    return 0


def _prepare(args) -> int:
    bench = _open(args)
    path = bench.prepare()
    if path is None:
        print(f"{args.name}: nothing to prepare (read directly from {bench.root})")
    else:
        print(f"{args.name}: cache ready at {path}")
        print(path)
    return 0
