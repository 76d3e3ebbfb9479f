"""What makes a paired (mvc/accuracy@2) board comparable: every complete entry ran the same
(split, seed) pairs, one run per pair, one index list per split id, a split seed that made the
split id it names; and what a reader is told about runs of a checkout with uncommitted changes."""

from __future__ import annotations

import copy

import pytest

from mv2d_bench.cli import main
from mv2d_bench.leaderboards import board as B
from mv2d_bench.leaderboards.records import write_record
from mv2d_bench.leaderboards.testing import mvc_v2_record
from mv2d_bench.leaderboards.validate import leaderboard_violations, validate_paths

SPLITS = (300, 301, 302, 303, 304)  # Hand's data card


def write_setting(folder, objective, seeds=(0, 1), errors=1, **kw):
    return [
        write_record(
            folder, mvc_v2_record("hand", objective, split_seed=s, seed=seed, errors=errors, **kw)
        )  # fmt: skip
        for s in SPLITS
        for seed in seeds
    ]


@pytest.mark.parametrize(
    ("seeds", "says"),
    [
        ((2, 3), "ran mvnncor/seed-300 seed 2"),  # no pair in common: was ranked by its mean
        ((0, 5), "has no run of mvnncor/seed-300 seed 1"),  # 5 of 10 pairs: was tested on those
    ],
)
def test_entries_on_different_pairs_stop_the_build(tmp_path, seeds, says):
    write_setting(tmp_path, "mv2d")
    write_setting(tmp_path, "vib", errors=3)
    write_setting(tmp_path, "vsd", seeds=seeds)
    with pytest.raises(B.BuildError) as err:
        B.build(B.load_records([tmp_path]))
    (v,) = err.value.violations
    assert "hand entry vsd" in v.message and says in v.message
    assert "expected every complete entry of a paired board on the same (split, seed) pairs" in (
        v.message
    )
    assert v.file.startswith(str(tmp_path)) and "vsd" in v.file


def test_a_hand_edited_board_with_a_pair_twice_or_unmatched_pairs_is_invalid(tmp_path):
    write_setting(tmp_path, "mv2d")
    write_setting(tmp_path, "vsd", errors=2)
    lb = B.build(B.load_records([tmp_path]))
    assert leaderboard_violations(lb, "lb.json") == []
    twice = copy.deepcopy(lb)
    entry = twice["boards"][0]["entries"][1]
    entry["runs"].append({**entry["runs"][0], "run_id": "0" * 16})
    got = [v for v in leaderboard_violations(twice, "lb.json") if v.path.endswith(".runs")]
    assert [v.path for v in got] == ["$.boards[0].entries[1].runs"]
    assert "mvnncor/seed-300 seed 0 recorded more than once" in got[0].message
    moved = copy.deepcopy(lb)
    for run in moved["boards"][0]["entries"][0]["runs"]:
        run["seed"] += 2
    got = [v.message for v in leaderboard_violations(moved, "lb.json")]
    assert any("same (split, seed) pairs" in m for m in got)


def test_one_split_id_with_two_index_lists_stops_the_build(tmp_path):
    write_setting(tmp_path, "mv2d")
    rec = mvc_v2_record("hand", "vsd", split_seed=301, seed=0)
    rec["benchmark"]["split_sha256"] = "0" * 64
    rec.pop("run_id", None)
    path = write_record(tmp_path, rec)
    with pytest.raises(B.BuildError) as err:
        B.build(B.load_records([tmp_path]))
    (v,) = err.value.violations
    assert v.path == "$.benchmark.split_sha256" and v.file == str(path)
    assert "split id mvnncor/seed-301 of hand has different index lists" in v.message


def test_a_split_seed_that_does_not_make_the_split_id_is_refused(tmp_path):
    rec = mvc_v2_record("hand", "mv2d", split_seed=300)
    rec["config"]["data"]["split_seed"] = 303
    rec.pop("run_id", None)
    path = write_record(tmp_path, rec)
    problems = {v.path: v.message for v in validate_paths([path])[0]}
    assert problems["$.config.data.split_seed"].startswith(
        "303: the run's split id is 'mvnncor/seed-300', but split seed 303 makes 'mvnncor/seed-303'"
    )


def test_runs_of_a_dirty_checkout_are_named_in_notes_and_in_the_rendered_source(tmp_path):
    clean = "a" * 40
    for p in write_setting(tmp_path / "runs", "mv2d"):
        p.unlink()
    for seed in (0, 1):
        for s in SPLITS:
            rec = mvc_v2_record("hand", "mv2d", split_seed=s, seed=seed)
            rev = clean + ("-dirty" if (s, seed) == (302, 1) else "")
            rec["environment"]["git_revision"] = rev
            rec.pop("run_id", None)
            write_record(tmp_path / "runs", rec)
    lb = B.build(B.load_records([tmp_path / "runs"]))
    (note,) = lb["boards"][0]["notes"]
    assert note.startswith("mv2d: 1 of 10 run(s) were made from a checkout with uncommitted")
    board = tmp_path / "lb.json"
    B.write_leaderboard(lb, board)
    assert main(["leaderboard", "render", str(board), "--format", "md", "--no-plots",
                 "-o", str(tmp_path / "lb.md")]) == 0  # fmt: skip
    text = (tmp_path / "lb.md").read_text()
    assert "2 revisions" in text and "uncommitted changes (-dirty)" in text
    for p in (tmp_path / "runs").glob("*.json"):
        p.unlink()
    for s in SPLITS:
        rec = mvc_v2_record("hand", "mv2d", split_seed=s, seed=0)
        rec["environment"]["git_revision"] = clean + "-dirty"
        rec.pop("run_id", None)
        write_record(tmp_path / "runs", rec)
    B.write_leaderboard(B.build(B.load_records([tmp_path / "runs"])), board)
    assert main(["leaderboard", "render", str(board), "--format", "md", "--no-plots",
                 "-o", str(tmp_path / "lb.md")]) == 0  # fmt: skip
    assert "(aaaaaaaaaaaa-dirty)" in (tmp_path / "lb.md").read_text()


@pytest.mark.parametrize("command", ["render", "build"])
def test_out_naming_a_folder_is_refused_before_any_work(tmp_path, capsys, command):
    write_setting(tmp_path / "runs", "mv2d")
    board = tmp_path / "lb.json"
    B.write_leaderboard(B.build(B.load_records([tmp_path / "runs"])), board)
    folder = tmp_path / "out"
    folder.mkdir()
    args = [str(board), "--format", "md"] if command == "render" else [str(tmp_path / "runs")]
    capsys.readouterr()
    assert main(["leaderboard", command, *args, "-o", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mv2d-bench: error: {folder}: -o/--out is a folder; expected the path of "
                   "the file to write"]  # fmt: skip
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "lb.json", "out", "runs"
    ]  # fmt: skip
