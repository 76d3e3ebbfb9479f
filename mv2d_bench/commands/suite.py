"""``mv2d-bench suite FILE.toml --out DIR``: benchmarks x settings x seeds, then a summary."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
A suite file names a base configuration, benchmarks, seeds and settings (an objective plus
configuration overrides, e.g. the paper's 'no bottleneck' row); see configs/suites/*.toml.
Benchmarks whose data is absent are skipped with one line; runs already recorded in --out
(same benchmark, objective and parameters, configuration and seed) are skipped, so an
interrupted suite resumes where it stopped.

Every run executes in a worker process that dies with the suite. A run that fails (any
exception, or a worker that dies) does not stop the others: it leaves a failure record
OUT/<run>.failed.json and its traceback in OUT/logs/<run>.failed.log, the suite exits 1 naming
it, and running the same command again redoes only the missing and failed runs (from the run's
checkpoint in OUT/checkpoints when it has one). Several suites may share one --out: each run is
claimed by a lock file (OUT/locks), runs claimed by another live process are left to it and
waited for (--no-wait: reported instead), and claims of dead processes are taken over. Ctrl-C
stops the suite with one line, keeping the records written and the checkpoints of the stopped
runs. A record in --out that cannot be read is named and moved aside (<name>.unreadable), and its
run is redone. Examples:

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
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for runs that another process is running into --out (default: wait, "
        "and take them over if that process dies)",
    )
    p.add_argument("--dry-run", action="store_true", help="list the runs; train nothing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_suite)


def _suite(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mv2d_bench.config import parse_seeds, run_key
    from mv2d_bench.harness.runlock import is_held, read_owner
    from mv2d_bench.harness.runner import open_benchmark
    from mv2d_bench.harness.suite import (
        PlannedRun,
        format_table,
        load_suite,
        plan_config,
        summarize,
    )
    from mv2d_bench.harness.suite_exec import RunFiles, SuiteExecutor, label
    from mv2d_bench.harness.suite_out import OutIndex
    from mv2d_bench.loaders import DataNotFoundError
    from mv2d_bench.registry import registry

    suite = load_suite(args.file)
    out = Path(args.out)
    if args.jobs < 1:
        raise ValueError(f"--jobs: expected an integer >= 1; got {args.jobs}")
    if args.threads is not None and args.threads < 0:
        raise ValueError(
            f"--threads: expected an integer >= 0 (0: torch's default); got {args.threads}"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: --out is a file; expected a folder for the run records")
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

    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else _say
    planned: list[PlannedRun] = []
    skipped: set[str] = set()  # a benchmark expanded per split seed is skipped once
    for b in benches:
        if b.name in skipped:
            continue
        first = plan_config(suite, b, settings[0], seeds[0], extra)
        try:
            open_benchmark(first)
        except DataNotFoundError as exc:
            say(f"skip {b.name}: data not found - {exc}")
            skipped.add(b.name)
            continue
        for s in settings:
            for seed in seeds:
                cfg = plan_config(suite, b, s, seed, extra)
                key = run_key(cfg.to_dict())
                planned.append(PlannedRun(b.name, s.name, seed, cfg, key, b.split_seed))
    _refuse_duplicates(planned, args.file)
    index = OutIndex(out)
    for problem in index.refresh(move=not args.dry_run):  # a dry run changes nothing
        say(f"warning: {problem}")
    pending = [r for r in planned if r.key not in index.records]
    failed_before = [r for r in pending if r.key in index.failures]
    say(
        f"suite {suite.name}: {len(planned)} runs planned, {len(planned) - len(pending)} "
        f"already recorded in {out}, {len(pending)} to run"
        + (f" ({len(failed_before)} failed before)" if failed_before else "")
    )
    if args.dry_run:
        for r in planned:
            files = RunFiles.of(out, r)
            if r.key in index.records:
                state = "recorded"
            elif is_held(files.lock):
                owner = read_owner(files.lock)
                state = f"running ({owner.describe() if owner else 'another process'})"
            elif r.key in index.failures:
                state = "failed"
            else:
                state = "pending"
            split = "" if r.split_seed is None else f"  split {r.split_seed}"
            say(f"  {state:8}  {r.benchmark:12} {r.setting:16} seed {r.seed}{split}")
        return 0
    executor = SuiteExecutor(
        out, index, args.jobs, say, wait=not args.no_wait, command=" ".join(sys.argv)
    )
    outcome = _execute(executor, pending, out)
    index.refresh()
    records = []
    for r in planned:
        if r.key in index.records:
            rec = json.loads(index.records[r.key].read_text(encoding="utf-8"))
            records.append((r.benchmark, r.setting, rec))
    rows = summarize(records)
    failures = [f"{label(r)}: {line} (failure record {path})" for r, line, path in outcome.failed]
    left = [f"{label(r)}: still claimed by {owner.describe()}" for r, owner in outcome.left]
    if args.json:
        print(json.dumps({"suite": suite.name, "rows": rows, "failures": failures,
                          "not_run": left}, indent=2))  # fmt: skip
    else:
        print()
        print(format_table(rows, [s.name for s in settings], "accuracy"))
    for line in left:
        say(f"not run here: {line}")
    if failures:
        say(f"{len(failures)} run(s) failed (re-run the same command to redo only them):")
        for line in failures:
            say(f"  {line}")
        return 1
    return 1 if left else 0


def _refuse_duplicates(planned, file: str) -> None:
    """Two settings that resolve to the same configuration would be one run under two names."""
    seen: dict[str, object] = {}
    for r in planned:
        other = seen.setdefault(r.key, r)
        if other is not r:
            raise ValueError(
                f"{file}: settings {other.setting!r} and {r.setting!r} give the same run "
                f"({r.benchmark}, seed {r.seed}: the same resolved configuration); expected "
                "settings that differ in objective or configuration"
            )


def _say(*parts: object) -> None:
    print(*parts, flush=True)


def _execute(executor, pending, out):
    from mv2d_bench.harness.suite_exec import Interrupted, interrupted_line

    try:
        return executor.execute(pending)
    except Interrupted as exc:  # one line (cli.main prints it), exit 130
        raise KeyboardInterrupt(interrupted_line(exc, out)) from None
