"""The ``mv2d-bench`` command. Each subcommand lives in ``mv2d_bench.commands.<name>`` and
exposes ``register(subparsers)``; heavy imports (torch, data) happen inside the handlers so that
``--help`` stays fast.

Errors (one contract for every subcommand): a problem with the user's input - a bad file, value,
name or path - is one line on standard error,
``mv2d-bench: error: FILE: FIELD: what was expected, what was found``, and exit status 2, with no
traceback. Code raises :class:`CliError` or a ``ValueError`` / ``LookupError`` / ``OSError``
subclass with such a message. Anything else is a bug: its traceback is shown with a hint to
report it, and the exit status is 3. Ctrl-C ends with one line and status 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings

from mv2d_bench import __version__

COMMANDS = (
    "objectives",
    "benchmarks",
    "data",
    "run",
    "evaluate",
    "suite",
    "score",
    "leaderboard",
)
PROG = "mv2d-bench"
EXIT_USAGE = 2
"""Bad input: the one-line error."""
EXIT_BUG = 3
"""An internal error (a traceback was printed)."""
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An error to print as one line and exit with status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with the project's one-line error (no usage block) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix(PROG).strip()
        prefix = f"{where}: " if where else ""
        self.exit(
            EXIT_USAGE,
            f"{PROG}: error: {prefix}{message} (see '{self.prog} --help')\n",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=(
            "Benchmark information-bottleneck objectives (CIB, VIB, VSD, VCD, VMD, MV2D) on "
            "multi-view classification, visible-infrared ReID and LiDAR-RGB segmentation, "
            "under the official protocols."
        ),
        epilog="Exit status: 0 success; 1 a check failed (violations, failed runs); 2 bad "
        "input (one line names the file, the field and what was expected); 3 an internal "
        "error (a bug: a traceback is shown); 130 interrupted.",
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


def one_line(text: str) -> str:
    """``text`` on one line: continuation lines joined with '; '."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    head, rest = lines[0], lines[1:]
    if not rest:
        return head
    return head + (" " if head.endswith(":") else "; ") + "; ".join(rest)


def user_error(exc: BaseException) -> str | None:
    """The one-line message when ``exc`` is a user-facing error, else None (a bug)."""
    if isinstance(exc, CliError):
        return one_line(str(exc))
    if isinstance(exc, OSError):
        if exc.filename is not None and exc.strerror:
            name = exc.filename
            if exc.filename2 is not None:
                name = f"{name} -> {exc.filename2}"
            return f"{name}: {exc.strerror}"
        return one_line(str(exc) or type(exc).__name__)
    if isinstance(exc, IndexError):
        return None  # "list index out of range" is our bug, never the user's input
    if type(exc) is KeyError:
        return None  # a plain missing key is our bug (user-facing lookups raise subclasses)
    if isinstance(exc, LookupError):
        args = exc.args
        text = args[0] if len(args) == 1 and isinstance(args[0], str) else str(exc)
        return one_line(text)
    if isinstance(exc, ValueError):
        return one_line(str(exc) or type(exc).__name__)
    return None


_python_format_warning = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Our own warnings (deprecations, notes) as one line ``mv2d-bench: warning: ...``; other
    libraries' warnings keep Python's format with their source location."""
    package = os.path.dirname(os.path.abspath(__file__))
    if os.path.abspath(filename).startswith(package + os.sep):
        return f"{PROG}: warning: {one_line(str(message))}\n"
    return _python_format_warning(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args = parser.parse_args(argv)  # --help, --version and usage errors exit here (SystemExit)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (``mv2d-bench objectives list | head``): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt as exc:  # a command may say what it kept ("interrupted: ...")
        text = one_line(str(exc))
        print(
            f"{PROG}: {text if text.startswith('interrupted') else 'interrupted'}", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the one place that decides: user error or bug
        message = user_error(exc)
        if message is not None:
            print(f"{PROG}: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        traceback.print_exc()
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {one_line(str(exc))} - this is a "
            f"bug in mv2d-bench {__version__} (or in a plugin it loaded); please report it "
            "with the command line and the traceback above",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
