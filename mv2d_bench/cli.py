"""The ``mv2d-bench`` command. Each subcommand lives in ``mv2d_bench.commands.<name>`` and
exposes ``register(subparsers)``; heavy imports (torch, data) happen inside the handlers so that
``--help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mv2d_bench import __version__

COMMANDS = ("objectives", "benchmarks", "data", "run", "suite", "score", "leaderboard")


class CliError(Exception):
    """An error to print as one line and exit with status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mv2d-bench",
        description=(
            "Benchmark information-bottleneck objectives (CIB, VIB, VSD, VCD, VMD, MV2D) on "
            "multi-view classification, visible-infrared ReID and LiDAR-RGB segmentation, "
            "under the official protocols."
        ),
    )
    parser.add_argument("--version", action="version", version=f"mv2d-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mv2d_bench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mv2d_bench.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (``mv2d-bench objectives list | head``): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except CliError as exc:
        print(f"mv2d-bench: error: {exc}", file=sys.stderr)
        return 2
    except (LookupError, ValueError, TypeError, OSError) as exc:
        # Known user-facing failures (bad names, bad files, bad values): one clear line.
        print(f"mv2d-bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
