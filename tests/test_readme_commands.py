"""Every command the README shows parses: each ``mv2d-bench ...`` line (in code blocks and inline
code) through the real argument parser, the ``run`` commands also through the configuration
loader (their --config and --set values resolve), and every ReID run from a paper or authors'
preset passes ``model.weights``; each ``python benchmarks/...`` command through its script's
parser. Nothing is run."""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def commands() -> list[str]:
    """The README's commands: shell code-block lines (backslash continuations joined) and
    inline code spans that start with ``mv2d-bench`` or ``python benchmarks/``; a documented
    ellipsis (``...``) marks a fragment, not a command."""
    text = README.read_text(encoding="utf-8")
    found: list[str] = []
    prose: list[str] = []
    block: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if block is None:
                block = [] if line.strip() in ("```bash", "```sh") else None
                if block is None:  # another language (or none): skip to its closing fence
                    block = ["<skip>"]
            else:
                if block[:1] != ["<skip>"]:
                    joined = re.sub(r"\\\n\s*", " ", "\n".join(block))
                    found += [x.strip() for x in joined.splitlines()]
                block = None
            continue
        if block is not None:
            block.append(line)
        else:
            prose.append(line)
    spans = re.findall(r"`((?:mv2d-bench|python benchmarks/)[^`]*)`", "\n".join(prose))
    spans = [" ".join(span.split()) for span in spans]  # a span may wrap across lines
    found += [span for span in spans if span not in subcommand_names()]
    starts = ("mv2d-bench ", "python benchmarks/")
    return [c for c in found if c.startswith(starts) and "..." not in c]


def subcommand_names() -> set[str]:
    """Inline ``mv2d-bench COMMAND`` spans that name a subcommand in prose (not commands)."""
    text = README.read_text(encoding="utf-8")
    return {" ".join(m.split()) for m in re.findall(r"`(mv2d-bench\s+[a-z-]+)`", text)}


def test_subcommands_named_in_prose_exist():
    from mv2d_bench.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name in subcommand_names():
        assert name.split()[1] in sub.choices, f"README names an unknown subcommand: {name}"


def argv_of(command: str) -> list[str]:
    """Shell words of a documented command: comments and pipes cut, ``[...]`` optional groups
    kept, the first of ``a|b`` alternatives, loop variables given a value."""
    command = command.replace("[", " ").replace("]", " ").replace("$t", "1")
    words = []
    for w in shlex.split(command, comments=True):
        if w == "|":
            break
        words.append(w.split("|")[0] if "|" in w and not w.startswith("-") else w)
    return words


COMMANDS = commands()


def test_the_readme_shows_commands():
    assert len(COMMANDS) > 20
    assert any(c.startswith("mv2d-bench run --benchmark regdb") for c in COMMANDS)
    assert any("--rand-perm-cam" in c for c in COMMANDS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("mv2d-bench ")])
def test_mv2d_bench_command_parses(command):
    from mv2d_bench.cli import build_parser

    argv = argv_of(command)[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits: 0 after --help, else on a bad command line
        if exc.code == 0 and ("--help" in argv or "-h" in argv):
            return
        pytest.fail(f"README command does not parse ({exc.code}): {command}")
    if argv[0] != "run":
        return
    from mv2d_bench.commands.run import cli_values
    from mv2d_bench.config import load_config

    config_path = REPO / args.config if args.config else None
    cfg = load_config(config_path, overrides=args.overrides, cli=cli_values(args))
    reid = cfg.task.get("reid")
    if reid is not None and reid.preset:
        weights = cfg.task["model"].weights
        assert weights, f"README runs a {reid.preset} preset without model.weights: {command}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python benchmarks/")])
def test_benchmark_command_parses(command, monkeypatch):
    words = argv_of(command)
    script = REPO / words[1]
    assert script.is_file(), f"README names a missing script: {command}"
    spec = importlib.util.spec_from_file_location(f"readme_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Parsed(Exception):
        pass

    real = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        raise Parsed(real(self, words[2:], namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    try:
        module.main()
    except Parsed:
        return
    except SystemExit as exc:
        pytest.fail(f"README command does not parse ({exc.code}): {command}")
    pytest.fail(f"{script.name}: main() never parsed its arguments")
