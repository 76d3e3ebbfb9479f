"""``mv2d-bench suite FILE.toml --out DIR``: benchmarks x settings x seeds, then a summary."""

from __future__ import annotations

import argparse
import json
import sys
import time

EPILOG = """\
A suite file names a base configuration, benchmarks, seeds and settings (an objective plus
configuration overrides, e.g. the paper's 'no bottleneck' row); see configs/suites/*.toml.
Benchmarks whose data is absent are skipped with one line; runs already recorded in --out
(same benchmark, objective and parameters, configuration and seed) are skipped, so an
interrupted suite resumes where it stopped. Examples:

  mv2d-bench suite configs/suites/paper-mvc.toml --out runs/paper-mvc
  mv2d-bench suite configs/suites/paper-mvc.toml --out runs/paper-mvc --benchmark hand --jobs 2
  mv2d-bench suite configs/suites/paper-mvc.toml --out runs/quick --set train.epochs=5 --dry-run
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "suite",
        help="run benchmarks x settings x seeds from a suite file; print a summary table",
        description="Run every benchmark x setting x seed of a suite file that is not recorded "
        "yet, writing one run record per run into --out, and end with a table of the mean and "
        "standard deviation of the protocol's primary metric over seeds.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE.toml", help="the suite file")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the run records")
    p.add_argument(
        "--benchmark", action="append", default=[], metavar="NAME", help="only this benchmark"
    )
    p.add_argument(
        "--setting", action="append", default=[], metavar="NAME", help="only this setting"
    )
    p.add_argument("--seeds", metavar="0,1,..", help="only these seeds")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override a configuration key in every run (part of the run's identity)",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per run (default: 1 with --jobs > 1)")
    p.add_argument("--dry-run", action="store_true", help="list the runs; train nothing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_suite)


def _worker(config, out_dir: str) -> tuple[str | None, str | None, float]:
    from mv2d_bench.harness.runner import run

    t0 = time.perf_counter()
    try:
        path = run(config, out_dir)
    except (ValueError, TypeError, LookupError, OSError, RuntimeError) as exc:
        return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
    return str(path), None, time.perf_counter() - t0


def _suite(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mv2d_bench.config import parse_seeds, run_key
    from mv2d_bench.harness.runner import open_benchmark
    from mv2d_bench.harness.suite import (
        PlannedRun,
        format_table,
        load_suite,
        plan_config,
        recorded_keys,
        summarize,
    )
    from mv2d_bench.loaders import DataNotFoundError
    from mv2d_bench.registry import registry

    suite = load_suite(args.file)
    out = Path(args.out)
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1; got {args.jobs}")
    threads = args.threads if args.threads is not None else (1 if args.jobs > 1 else None)
    extra = list(args.overrides)
    if threads is not None:
        extra.append(f"run.threads={threads}")
    if args.jobs > 1 or args.json:
        extra.append("train.progress=false")
    benches = [b for b in suite.benchmarks if not args.benchmark or b.name in args.benchmark]
    settings = [s for s in suite.settings if not args.setting or s.name in args.setting]
    for name in args.benchmark:
        if name not in [b.name for b in suite.benchmarks]:
            raise LookupError(f"{args.file}: no benchmark {name!r} in this suite")
    for name in args.setting:
        if name not in [s.name for s in suite.settings]:
            known = ", ".join(repr(s.name) for s in suite.settings)
            raise LookupError(f"{args.file}: no setting {name!r} in this suite; known: {known}")
    seeds = suite.seeds
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
    for b in benches:
        registry("benchmarks").entry(b.name)  # unknown names fail before anything runs
    for s in settings:
        registry("objectives").entry(s.objective)

    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    planned: list[PlannedRun] = []
    for b in benches:
        first = plan_config(suite, b, settings[0], seeds[0], extra)
        try:
            open_benchmark(first)
        except DataNotFoundError as exc:
            say(f"skip {b.name}: data not found - {exc}")
            continue
        for s in settings:
            for seed in seeds:
                cfg = plan_config(suite, b, s, seed, extra)
                planned.append(PlannedRun(b.name, s.name, seed, cfg, run_key(cfg.to_dict())))
    done = recorded_keys(out)
    pending = [r for r in planned if r.key not in done]
    say(
        f"suite {suite.name}: {len(planned)} runs planned, {len(planned) - len(pending)} "
        f"already recorded in {out}, {len(pending)} to run"
    )
    if args.dry_run:
        for r in planned:
            state = "recorded" if r.key in done else "pending"
            say(f"  {state:8}  {r.benchmark:12} {r.setting:16} seed {r.seed}")
        return 0
    failures = _execute(pending, out, args.jobs, say)
    done = recorded_keys(out)
    records = []
    for r in planned:
        if r.key in done:
            rec = json.loads(done[r.key].read_text(encoding="utf-8"))
            records.append((r.benchmark, r.setting, rec))
    rows = summarize(records)
    if args.json:
        print(json.dumps({"suite": suite.name, "rows": rows, "failures": failures}, indent=2))
    else:
        print()
        print(format_table(rows, [s.name for s in settings], "accuracy"))
    return 1 if failures else 0


def _execute(pending, out, jobs: int, say) -> list[str]:
    from tqdm import tqdm

    failures: list[str] = []

    def report(r, path, err, secs) -> None:
        label = f"{r.benchmark}/{r.setting} seed {r.seed}"
        if err:
            failures.append(f"{label}: {err}")
            say(f"failed {label} after {secs:.1f} s: {err}")
        else:
            rec = json.loads(open(path, encoding="utf-8").read())
            acc = rec["metrics"].get("accuracy")
            shown = f"accuracy {acc:.2f}" if isinstance(acc, (int, float)) else "done"
            say(f"done {label}: {shown} ({secs:.1f} s) -> {path}")

    if jobs == 1:
        for r in pending:
            report(r, *_worker(r.config, str(out)))
        return failures
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_worker, r.config, str(out)): r for r in pending}
        with tqdm(total=len(futures), desc="runs", file=sys.stderr, leave=False) as bar:
            for fut in as_completed(futures):
                report(futures[fut], *fut.result())
                bar.update()
    return failures
