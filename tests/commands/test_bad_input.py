"""Bad input, table-driven: every case gives exactly one line on standard error,
``mv2d-bench: error: ...`` naming the file (or flag) and what was expected, exit status 2, no
traceback, and nothing written (no half-written ``*.part`` / ``*.tmp`` left, no output folder).

Cases run in-process through ``cli.main``; the one whose failure mode is a crash of the
interpreter (a .mat that made scipy segfault) runs in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from mv2d_bench.cli import main

SYN = ["--benchmark", "synthetic-mv", "--objective", "vib", "--epochs", "1", "--no-progress",
       "--set", "benchmark.samples=200", "--set", "benchmark.n_views=2",
       "--set", "model.hidden=[8, 4]", "--set", "model.z_dim=2"]  # fmt: skip

SUITE = """[suite]
name = "bad"
benchmarks = ["synthetic-mv"]
objectives = ["vib"]
seeds = [0]
"""


def small_mat(path: Path, compress: bool = False) -> bytes:
    """A 2-view .mat (50 samples) as scipy writes it."""
    rng = np.random.default_rng(0)
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = rng.random((50, 4)), rng.random((50, 3))
    sio.savemat(path, {"X": cell, "Y": np.arange(50) % 5}, do_compression=compress)
    return path.read_bytes()


def bad_type_mat(path: Path) -> None:
    """The first view's data element tagged with type 25 (no MATLAB type): scipy 1.17 crashes."""
    data = bytearray(small_mat(path))
    assert data[224] == 9  # miDOUBLE: the tag of X{1}'s values in this layout
    data[224] = 25
    path.write_bytes(bytes(data))


def npz(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


def crc_damaged(path: Path) -> None:
    npz(path, pred=np.arange(1000) % 3, label=np.arange(1000) % 3)
    raw = bytearray(path.read_bytes())
    raw[300] ^= 0xFF  # inside pred.npy's bytes (stored, not compressed)
    path.write_bytes(bytes(raw))


def leaderboard_with_nan(path: Path) -> None:
    path.write_text('{"schema_version": 1, "kind": "mv2d-bench/leaderboard", "boards": '
                    '[{"benchmark": "hand", "entries": [{"metrics": {"accuracy": '
                    '{"mean": NaN}}}]}]}')  # fmt: skip


# (id, setup(tmp) -> None, argv with {tmp}, text the one line must hold)
CASES = [
    # -- configuration -----------------------------------------------------------------------
    ("config-utf16", lambda t: (t / "c.toml").write_bytes("[train]\nepochs = 1\n".encode("utf-16")),
     ["run", *SYN, "--config", "{tmp}/c.toml"], "c.toml: the file is UTF-16 (little-endian) text"),
    ("config-folder", lambda t: (t / "c.toml").mkdir(),
     ["run", *SYN, "--config", "{tmp}/c.toml"], "c.toml: is a folder; expected a TOML config file"),
    ("config-not-utf8", lambda t: (t / "c.toml").write_bytes(b"[train]\nepochs = 1 # \xff\n"),
     ["run", *SYN, "--config", "{tmp}/c.toml"], "c.toml: line 2: byte 0xff is not UTF-8"),
    ("config-missing", None,
     ["run", *SYN, "--config", "{tmp}/none.toml"], "none.toml: config file not found"),
    ("config-not-toml", lambda t: (t / "c.toml").write_text("[train\n"),
     ["run", *SYN, "--config", "{tmp}/c.toml"], "c.toml: not valid TOML"),
    ("config-unknown-key", lambda t: (t / "c.toml").write_text("[train]\nepoch = 3\n"),
     ["run", *SYN, "--config", "{tmp}/c.toml"], "c.toml: unknown key 'train.epoch'"),
    ("seed-overflow", None, ["run", *SYN, "--seed", str(2**70)],
     "'run.seed' must be an integer in 0..2**63-1"),
    ("seed-negative", None, ["run", *SYN, "--seed", "-1"], "'run.seed' must be an integer in"),
    ("threads-negative", None, ["run", *SYN, "--threads", "-3"], "'run.threads' must be"),
    ("lr-infinite", None, ["run", *SYN, "--set", "train.lr=inf"],
     "--set train.lr: 'train.lr': expected a finite number, got inf"),
    ("objective-nan", None, ["run", *SYN, "--set", "objective.beta=nan"],
     "'objective.beta': expected a finite number, got nan"),
    ("device-unknown", None, ["run", *SYN, "--device", "gpu7"],
     "'run.device' must be cpu, cuda, cuda:N or auto; got 'gpu7'"),
    ("set-no-equals", None, ["run", *SYN, "--set", "train.lr"], "--set 'train.lr': expected"),
    ("model-dropout-range", None, ["run", *SYN, "--set", "model.dropout=1.5"],
     "--set model.dropout: 'model.dropout' must be a probability in [0, 1); got 1.5"),
    ("model-hidden-empty", None, ["run", *SYN, "--set", "model.hidden=[]"],
     "'model.hidden' must be a non-empty list of integers > 0; got []"),
    ("model-zdim-zero", None, ["run", *SYN, "--set", "model.z_dim=0"],
     "'model.z_dim' must be an integer > 0; got 0"),
    ("mvnncor-gamma", None, ["run", *SYN[:-4], "--set", "model.name=mvnncor", "--set",
     "model.gamma=0.5"], "--set model.gamma: 'model.gamma' must be a number > 1"),
    ("mvnncor-init-std", None, ["run", *SYN[:-4], "--set", "model.name=mvnncor", "--set",
     "model.init_std=-1"], "'model.init_std' must be a number >= 0"),
    ("fractions-empty-split", None, ["run", *SYN, "--set", "data.fractions=[1.0, 0.0, 0.0]"],
     "'data.fractions' [1.0, 0.0, 0.0] leaves the val and test split empty"),
    ("fractions-sum", None, ["run", *SYN, "--set", "data.fractions=[0.9, 0.9, 0.9]"],
     "expected a sum of 1"),
    ("unknown-benchmark", None, ["run", "--benchmark", "synthtic-mv"],
     "did you mean 'synthetic-mv'"),
    ("unknown-objective", None, ["run", *SYN, "--objective", "mv3d"], "did you mean 'mv2d'"),
    ("objective-param", None, ["run", *SYN, "--set", "objective.bta=1"],
     "unknown key 'objective.bta' for objective 'vib'"),
    ("checkpoint-folder", lambda t: (t / "ck").mkdir(), ["run", *SYN, "--checkpoint", "{tmp}/ck"],
     "ck: --checkpoint is a folder"),
    ("checkpoint-garbage", lambda t: (t / "ck.pt").write_text("garbage"),
     ["run", *SYN, "--checkpoint", "{tmp}/ck.pt"], "ck.pt: --checkpoint is not a checkpoint"),
    ("evaluate-garbage", lambda t: (t / "ck.pt").write_text("garbage"),
     ["evaluate", "{tmp}/ck.pt"], "ck.pt: not a readable checkpoint"),
    # -- suites --------------------------------------------------------------------------------
    ("suite-set-bad-key", lambda t: (t / "s.toml").write_text(SUITE + 'set = {"train.foo" = 1}\n'),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out"],
     "s.toml: [suite] set: unknown key 'train.foo'"),
    ("suite-seeds-unparsable", lambda t: (t / "s.toml").write_text(SUITE),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out", "--seeds", "1,x"],
     "--seeds: 'x' is not an integer; expected comma-separated distinct integers"),
    ("suite-seeds-overflow", lambda t: (t / "s.toml").write_text(SUITE),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out", "--seeds", str(2**64)], "is out of range"),
    ("suite-seeds-empty", lambda t: (t / "s.toml").write_text(SUITE),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out", "--seeds", ","], "--seeds: expected"),
    ("suite-threads", lambda t: (t / "s.toml").write_text(SUITE),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out", "--threads", "-1"], "--threads: expected"),
    ("suite-jobs", lambda t: (t / "s.toml").write_text(SUITE),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out", "--jobs", "0"], "--jobs: expected"),
    ("suite-file-utf16", lambda t: (t / "s.toml").write_bytes(SUITE.encode("utf-16")),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out"], "s.toml: the file is UTF-16"),
    ("suite-file-folder", lambda t: (t / "s.toml").mkdir(),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out"], "s.toml: is a folder; expected a TOML suite"),
    ("suite-seeds-in-file", lambda t: (t / "s.toml").write_text(SUITE.replace("[0]", f"[{2**63}]")),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out"], "'suite.seeds' must be a non-empty list"),
    ("suite-duplicate-settings", lambda t: (t / "s.toml").write_text(
        SUITE + '[[setting]]\nname = "b"\nobjective = "vib"\nset = { "objective.beta" = 1e-3 }\n'),
     ["suite", "{tmp}/s.toml", "--out", "{tmp}/out"],
     "s.toml: settings 'b' and 'vib' give the same run"),
    # -- score ---------------------------------------------------------------------------------
    ("score-truncated", lambda t: (npz(t / "p.npz", pred=np.arange(9), label=np.arange(9)),
                                   (t / "p.npz").write_bytes((t / "p.npz").read_bytes()[:100])),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"],
     "p.npz: truncated or corrupt .npz"),
    ("score-empty", lambda t: (t / "p.npz").write_bytes(b""),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"], "p.npz: empty file (0 bytes)"),
    ("score-not-zip", lambda t: (t / "p.npz").write_text("pred,label\n1,1\n"),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"], "p.npz: not a .npz archive"),
    ("score-npy", lambda t: np.save(t / "p.npy", np.arange(3)),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npy"], "p.npy: a single .npy array"),
    ("score-missing-file", None,
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/none.npz"], "none.npz: no such file"),
    ("score-folder", lambda t: (t / "p.npz").mkdir(),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"], "p.npz: is a folder"),
    ("score-missing-key", lambda t: npz(t / "p.npz", pred=np.arange(3)),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"], "p.npz: missing key(s) label"),
    ("score-pickled", lambda t: npz(t / "p.npz", pred=np.array([0, "a"], dtype=object),
                                    label=np.arange(2)),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"],
     "key 'pred' holds Python objects"),
    ("score-complex", lambda t: npz(t / "p.npz", pred=np.ones((2, 2), complex), label=np.arange(2)),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"], "key 'pred': complex values"),
    ("score-label-negative", lambda t: npz(t / "p.npz", pred=np.arange(2), label=np.array([0, -1])),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"],
     "key 'label': class -1 is negative"),
    ("score-logits-classes", lambda t: npz(t / "p.npz", pred=np.zeros((3, 3)),
                                           label=np.array([0, 1, 5])),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"],
     "logits have 3 class column(s), but key 'label' holds class 5; expected labels in 0..2"),
    ("score-crc", lambda t: crc_damaged(t / "p.npz"),
     ["score", "mvc/accuracy@1", "--predictions", "{tmp}/p.npz"], "Bad CRC-32"),
    ("score-reid-complex", lambda t: npz(t / "p.npz", query_feat=np.ones((2, 3), complex),
                                         query_ids=[1, 2], query_cams=[3, 3],
                                         gallery_feat=np.ones((2, 3)), gallery_ids=[1, 2],
                                         gallery_cams=[1, 1]),
     ["score", "sysu-mm01/all-search/single-shot@1", "--predictions", "{tmp}/p.npz"],
     "key 'query_feat': complex values"),
    ("score-unknown-protocol", None, ["score", "mvc/accurcy@1", "--predictions", "x.npz"],
     "did you mean 'mvc/accuracy@1'"),
    # -- data ----------------------------------------------------------------------------------
    ("mat-truncated", lambda t: (t / "d.mat").write_bytes(small_mat(t / "d.mat", True)[:400]),
     ["data", "inspect", "{tmp}/d.mat"], "d.mat: cannot read MATLAB v5 data"),
    ("mat-corrupt-zlib", lambda t: (t / "d.mat").write_bytes(
        (lambda b: b[:200] + bytes(x ^ 0x5A for x in b[200:260]) + b[260:])(
            small_mat(t / "d.mat", True))),
     ["data", "inspect", "{tmp}/d.mat"], "d.mat: cannot read MATLAB v5 data"),
    ("mat-not-mat", lambda t: (t / "d.mat").write_text("x" * 200),
     ["data", "inspect", "{tmp}/d.mat"], "d.mat: not a MATLAB v5/v7.3 .mat file"),
    ("mat-run", lambda t: (t / "d.mat").write_bytes(small_mat(t / "d.mat", True)[:400]),
     ["run", "--benchmark", "mvmat", "--root", "{tmp}/d.mat", "--epochs", "1"],
     "d.mat: cannot read MATLAB v5 data"),
    ("verify-unknown-option", None, ["data", "verify", "hand", "-o", "zz=1"],
     "hand: unknown option(s) ['zz']"),
    # -- leaderboards --------------------------------------------------------------------------
    ("validate-empty", lambda t: (t / "empty").mkdir(), ["leaderboard", "validate", "{tmp}/empty"],
     "empty: no leaderboard, run record or reference-rows file found; checked nothing"),
    ("validate-missing", None, ["leaderboard", "validate", "{tmp}/none"], "none: $: no such file"),
    ("render-nan", lambda t: leaderboard_with_nan(t / "b.json"),
     ["leaderboard", "render", "{tmp}/b.json", "--format", "md", "-o", "{tmp}/b.md"],
     "b.json: holds NaN, which is not JSON"),
    ("compare-nan", lambda t: leaderboard_with_nan(t / "b.json"),
     ["leaderboard", "compare", "{tmp}/b.json", "{tmp}/b.json"],
     "b.json: holds NaN, which is not JSON"),
    ("render-not-a-board", lambda t: (t / "b.json").write_text('{"seed": 1}'),
     ["leaderboard", "render", "{tmp}/b.json", "--format", "html", "-o", "{tmp}/b.html"],
     "b.json: $.boards: required field"),
    ("render-truncated", lambda t: (t / "b.json").write_text('{"schema_version": 1, "bo'),
     ["leaderboard", "render", "{tmp}/b.json", "--format", "md", "-o", "{tmp}/b.md"],
     "b.json: not valid JSON"),
    ("build-empty", lambda t: (t / "empty").mkdir(),
     ["leaderboard", "build", "{tmp}/empty", "-o", "{tmp}/b.json"], "no run records under"),
    ("publish-out-is-file", lambda t: (t / "pub").write_text("x"),
     ["leaderboard", "publish", "{tmp}", "-o", "{tmp}/pub"], "pub: -o/--out is a file"),
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("setup, argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, monkeypatch, setup, argv, expected):
    monkeypatch.chdir(tmp_path)
    if setup is not None:
        setup(tmp_path)
    before = snapshot(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if args[0] == "run" and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    code = main(args)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("mv2d-bench: error: "), captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.out + captured.err
    assert snapshot(tmp_path) == before  # nothing written, nothing half-written, nothing lost


def test_a_mat_that_crashed_scipy_is_named_not_a_crash(tmp_path):
    """scipy 1.17 dies with SIGSEGV on this file; the structural check names it first."""
    bad_type_mat(tmp_path / "d.mat")
    proc = subprocess.run(
        [sys.executable, "-m", "mv2d_bench", "data", "inspect", str(tmp_path / "d.mat")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc
    assert proc.stderr.strip().splitlines() == [
        f"mv2d-bench: error: {tmp_path / 'd.mat'}: cannot read MATLAB v5 data (byte 224: data "
        "type 25 is not a MATLAB data type); the file is truncated or corrupt - expected a "
        "complete .mat file"
    ]


def test_argparse_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--seed", "abc", "--out", "x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "mv2d-bench: error: run: argument --seed: invalid int value: 'abc' "
        "(see 'mv2d-bench run --help')"
    ]


def test_data_verify_json_prints_json_on_failure(capsys):
    assert main(["data", "verify", "hnd", "--json"]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False and "did you mean 'hand'" in report["error"]
    assert captured.err.strip().splitlines() == [f"mv2d-bench: error: {report['error']}"]


def test_a_genuine_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    import mv2d_bench.commands.benchmarks as cmd

    def broken(args):
        return {}["no such key"]  # a bug: a bare KeyError, not a message for the user

    monkeypatch.setattr(cmd, "_list", broken)
    assert main(["benchmarks", "list"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "mv2d-bench: internal error: KeyError: 'no such key' - this is a bug in mv2d-bench"
        )
    )
