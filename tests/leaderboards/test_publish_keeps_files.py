"""``leaderboard publish`` never deletes a file it did not write; ``validate`` fails fabricated
numbers and empty input; ``render`` and ``compare`` refuse what does not validate."""

from __future__ import annotations

import json
import math

import pytest

from mv2d_bench.cli import main
from mv2d_bench.leaderboards.records import write_record
from mv2d_bench.leaderboards.testing import mvc_record

BENCHES = ("hand", "scene15")


@pytest.fixture
def runs(tmp_path):
    """Five seeds on each of two benchmarks, two objectives: 20 run records."""
    folder = tmp_path / "runs"
    for bench in BENCHES:
        for objective in ("vib", "mv2d"):
            for seed in range(5):
                write_record(folder, mvc_record(bench, objective, seed=seed, errors=seed % 3))
    return folder


def publish(out, *args: str) -> int:
    return main(["leaderboard", "publish", *args, "-o", str(out), "--no-plots"])


def board_names(path) -> list[str]:
    return [b["benchmark"] for b in json.loads(path.read_text())["boards"]]


def test_publishing_one_benchmark_from_the_published_records_keeps_the_others(
    runs, tmp_path, capsys
):
    out = tmp_path / "pub"
    assert publish(out, str(runs)) == 0
    published = sorted(p.name for p in (out / "records").glob("*.json"))
    assert len(published) == 20
    plot = out / "plots" / "hand-mvc-accuracy-1-entries.png"
    plot.parent.mkdir(exist_ok=True)
    plot.write_bytes(b"\x89PNG a plot an earlier publish made")
    mine = out / "records" / "notes.txt"
    mine.write_text("the maintainer's notes")
    # the case that lost 110 of 140 records: publish OUT's own records for one benchmark
    assert publish(out, str(out / "records"), "--benchmark", "hand") == 0
    assert sorted(p.name for p in (out / "records").glob("*.json")) == published
    assert board_names(out / "mvc.json") == sorted(BENCHES)  # the other board is kept too
    assert plot.read_bytes().startswith(b"\x89PNG a plot") and mine.is_file()  # --no-plots
    assert main(["leaderboard", "validate", str(out)]) == 0
    capsys.readouterr()


def test_records_an_earlier_publish_wrote_are_kept_unless_pruned(runs, tmp_path, capsys):
    out = tmp_path / "pub"
    assert publish(out, str(runs)) == 0
    hand = sorted((runs).glob("hand-*.json"))
    # a new set of runs: one hand record replaced (a re-run with another score)
    newer = tmp_path / "runs2"
    for p in sorted(runs.glob("*.json")):
        if p != hand[0]:
            (newer / p.name).parent.mkdir(exist_ok=True)
            (newer / p.name).write_bytes(p.read_bytes())
    old = json.loads(hand[0].read_text())
    rerun = write_record(
        newer, mvc_record("hand", old["objective"]["name"], seed=old["seed"], errors=4)
    )
    user_file = out / "records" / "hand-kept-s9-0123456789abcdef.json"
    user_file.write_text("{}")  # named like a record, but publish never wrote it
    capsys.readouterr()
    assert publish(out, str(newer)) == 0
    assert (out / "records" / hand[0].name).is_file()  # kept, and said so
    assert "note: 2 record(s) and 0 plot(s)" in capsys.readouterr().err
    assert publish(out, str(newer), "--prune") == 0
    assert "pruned 1 file(s) an earlier publish wrote; kept 1 it did not write" in (
        capsys.readouterr().out
    )
    assert not (out / "records" / hand[0].name).exists() and user_file.is_file()
    assert (out / "records" / rerun.name).is_file()
    user_file.unlink()
    assert main(["leaderboard", "validate", str(out)]) == 0


def test_validate_fails_fabricated_numbers_and_empty_input(runs, tmp_path, capsys):
    out = tmp_path / "pub"
    assert publish(out, str(runs)) == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "mvc.json").write_bytes((out / "mvc.json").read_bytes())
    capsys.readouterr()
    # the board without its records: every number is unbacked
    assert main(["leaderboard", "validate", str(alone / "mvc.json")]) == 1
    text = capsys.readouterr()
    assert text.out.count("run record not found") == 20
    # the records given beside it: found by run id, checked
    assert main(["leaderboard", "validate", str(alone / "mvc.json"), str(runs)]) == 0
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["leaderboard", "validate", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mv2d-bench: error: {empty}: no leaderboard")
    assert "checked nothing" in err[0]


def _edited(src, dst, change) -> None:
    data = json.loads(src.read_text())
    change(data["boards"][0]["entries"][0]["metrics"]["accuracy"])
    dst.write_text(json.dumps(data))  # json.dumps writes NaN as the bare token NaN


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(mean=math.nan), "holds NaN, which is not JSON"),
        (lambda s: s.update(mean=s["mean"] + 0.5), ".metrics.accuracy.mean: "),
        (lambda s: s.update(values=[100.0] * len(s["values"]), mean=100.0, std=0.0),
         ".metrics.accuracy.values: [100.0, 100.0, 100.0, 100.0, 100.0]: expected the runs'"),
    ],
    ids=["nan-mean", "edited-mean", "edited-values"],
)  # fmt: skip
def test_render_and_compare_refuse_what_does_not_validate(runs, tmp_path, capsys, change, message):
    out = tmp_path / "pub"
    assert publish(out, str(runs)) == 0
    bad = out / "edited.json"  # beside the records, so the runs are checked against them
    _edited(out / "mvc.json", bad, change)
    capsys.readouterr()
    page = tmp_path / "page.md"
    assert main(["leaderboard", "render", str(bad), "--format", "md", "-o", str(page)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not page.exists()
    for args in ([str(out / "mvc.json"), str(bad)], [str(out / "mvc.json"), str(bad), "--json"]):
        assert main(["leaderboard", "compare", *args]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and message in captured.err and "Traceback" not in captured.err


def test_compare_json_is_strict_json(runs, tmp_path, capsys):
    out = tmp_path / "pub"
    assert publish(out, str(runs)) == 0
    capsys.readouterr()
    assert main(["leaderboard", "compare", str(out / "mvc.json"), str(out / "mvc.json"),
                 "--json"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    json.loads(text, parse_constant=lambda name: pytest.fail(f"compare --json printed {name}"))
