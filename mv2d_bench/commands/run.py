"""``mv2d-bench run``: train and evaluate one benchmark x objective x seed; write a run record."""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """\
configuration (lowest to highest precedence): built-in defaults, --config FILE (TOML tables
[run] [train] [data] [objective] [benchmark] and the task's [model] [loss]), the flags above,
then --set. Examples:

  mv2d-bench run --benchmark hand --objective mv2d --config configs/paper/mvc.toml --out runs/
  mv2d-bench run --benchmark synthetic-mv --objective vib --epochs 5 \\
      --set objective.beta=1e-2 --set benchmark.n_views=3 --out runs/
  mv2d-bench run --benchmark hand --objective baseline --set model.bottleneck=false --out runs/

The record's path is printed as the last line of standard output. When --out already holds
this run's record (same configuration), nothing is trained: the command says so and prints that
record's path (exit 0); --force runs it again. With --checkpoint FILE, a killed run resumes
where its last checkpoint left it when the same command is run again.

MVC models ([model] name): "multiview-ib" - the MV2D paper's network (per-view encoders,
Gaussian bottlenecks, model.fusion = relation-full | relation-lowrank | concat | mean,
model.distill_through_heads); the paper presets use it. "mvnncor" - the released MvNNcor
(configs/baselines/mvnncor.toml). DEPRECATED: name = "mvnncor" together with keys of the MV2D
network (bottleneck, z_dim, bottleneck_hidden, min_std, fusion, relation_rank) still selects
"multiview-ib", with a warning; that spelling will stop working - write "multiview-ib".
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="train and evaluate one configuration; write its run record",
        description="Train one model with one objective on one benchmark, pick the epoch with the "
        "best validation score, evaluate it on the test split under the benchmark's official "
        "protocol and write a run record (JSON) plus a JSONL training log into --out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--benchmark", help="benchmark name (see 'mv2d-bench benchmarks list')")
    p.add_argument("--objective", help="objective name (see 'mv2d-bench objectives list')")
    p.add_argument("--root", help="data root (default: $MV2D_DATA, then the benchmark's default)")
    p.add_argument("--seed", type=int, help="training seed (default 0)")
    p.add_argument("--epochs", type=int, help="number of training epochs")
    p.add_argument("--config", metavar="FILE", help="a TOML run configuration")
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="TABLE.KEY=VALUE",
        action="append",
        default=[],
        help="override one configuration key (repeatable), e.g. train.lr=1e-4",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="save the whole training state here after every epoch (and every "
        "train.checkpoint_every steps); rerunning the same command resumes from it, bitwise as "
        "if never interrupted",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="run even when --out already holds this run's record, and start from scratch "
        "instead of resuming from --checkpoint",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the run record")
    p.set_defaults(func=_run)


def cli_values(args: argparse.Namespace) -> dict[str, dict]:
    return {
        "run": {
            "benchmark": args.benchmark,
            "objective": args.objective,
            "root": args.root,
            "seed": args.seed,
            "device": args.device,
            "threads": args.threads,
        },
        "train": {"epochs": args.epochs, "progress": False if args.no_progress else None},
    }


def _run(args: argparse.Namespace) -> int:
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.runner import find_record, run

    config = load_config(args.config, overrides=args.overrides, cli=cli_values(args))
    if not config.run.benchmark:
        raise ValueError("no benchmark given: pass --benchmark NAME or set run.benchmark")
    rank0 = int(os.environ.get("RANK", "0")) == 0
    done = None if args.force else find_record(args.out, config)
    if done is not None:  # every rank reads the same folder and stops here
        if rank0:
            print(
                f"mv2d-bench: this run is already recorded in {done}; nothing to do "
                "(--force runs it again)",
                file=sys.stderr,
            )
            print(done)
        return 0
    if args.checkpoint:
        check_checkpoint_path(args.checkpoint)
    path = run(config, args.out, checkpoint=args.checkpoint, force=args.force)
    if path is not None:  # rank 0 (the only one under torchrun that writes)
        print(path)
    return 0


def check_checkpoint_path(path: str) -> None:
    """Refuse, before any training, a --checkpoint that is a folder or an existing file that
    torch.save did not write (its zip format; a file of the legacy format passes too)."""
    import zipfile
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: --checkpoint is a folder; expected a file to save and resume from")
    if p.is_file():
        with open(p, "rb") as f:
            head = f.read(2)
        if not zipfile.is_zipfile(p) and head != b"\x80\x02":  # zip, or a legacy pickle
            raise ValueError(
                f"{p}: --checkpoint is not a checkpoint (not a file torch.save wrote); expected "
                "a checkpoint of this run, or a path that does not exist yet"
            )
