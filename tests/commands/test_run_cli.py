"""``mv2d-bench run``: writes one complete, schema-valid run record and prints its path last."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mv2d_bench.cli import main
from mv2d_bench.leaderboards.records import check_record

FAST = [
    "--set", "run.threads=1",
    "--set", "benchmark.samples=200",
    "--set", "benchmark.n_views=3",
    "--set", "benchmark.dims=6",
    "--set", "model.hidden=[16, 8]",
    "--set", "model.z_dim=4",
    "--set", "model.bottleneck_hidden=8",
    "--set", "model.relation_rank=4",
    "--set", "model.classifier_hidden=8",
]  # fmt: skip


def run_cli(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["run", *args])
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err


def test_run_writes_a_filled_record_and_prints_its_path_last(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[train]\nbatch_size = 32\nlr_milestones = [1]\n[objective]\nbeta = 0.01\n")
    code, lines, _ = run_cli(
        capsys, "--benchmark", "synthetic-mv", "--objective", "vib", "--seed", "3",
        "--epochs", "2", "--config", str(cfg), "--no-progress", "--out", str(tmp_path / "out"),
        *FAST,
    )  # fmt: skip
    assert code == 0
    path = Path(lines[-1])
    assert path.parent == tmp_path / "out" and path.is_file()
    rec = json.loads(path.read_text())
    assert check_record(rec, str(path)) == []
    assert rec["benchmark"]["name"] == "synthetic-mv"
    assert (
        len(rec["benchmark"]["data_sha256"]) == 64 and len(rec["benchmark"]["split_sha256"]) == 64
    )
    assert rec["benchmark"]["split_id"] == "stratified-70-20-10/seed-0"
    assert rec["protocol"] == "mvc/accuracy@1"
    assert rec["objective"] == {
        "name": "vib",
        "version": 1,
        "params": {"beta": 0.01, "weight": 1.0},
        "distribution": "mv2d-bench",
        "distribution_version": rec["environment"]["package_version"],
    }
    assert rec["model"]["name"] == "multiview-ib" and rec["model"]["params"]["z_dim"] == 4
    assert rec["model"]["params"]["view_dims"] == [6, 6, 6]
    assert rec["model"]["param_count"] > 0
    assert rec["seed"] == 3 and rec["config"]["run"]["seed"] == 3
    assert rec["config"]["train"]["batch_size"] == 32 and rec["config"]["train"]["epochs"] == 2
    assert rec["config"]["benchmark"]["n_views"] == 3
    m = rec["metrics"]
    assert 0.0 <= m["accuracy"] <= 100.0 and m["best_epoch"] in (1, 2)
    assert "val_accuracy" in m
    assert "last_epoch_accuracy" in m  # the last epoch's test accuracy beside the best one
    trial = {"accuracy": m["accuracy"], "last_epoch_accuracy": m["last_epoch_accuracy"]}
    assert rec["per_trial"] == [{"trial": 1, "metrics": trial}]
    assert rec["cost"]["train_seconds"] > 0 and rec["cost"]["steps_per_second"] > 0
    log = path.parent / rec["artifacts"]["log"]
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events == ["start", "epoch", "epoch", "test"]
    # the accuracy is the test accuracy of the logged best validation epoch
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["test"]["accuracy"] == m["accuracy"] and last["best_epoch"] == m["best_epoch"]


def test_the_same_run_twice_gives_the_same_metrics(tmp_path, capsys):
    args = ["--benchmark", "synthetic-mv", "--objective", "mv2d", "--epochs", "1", "--no-progress"]
    _, a, _ = run_cli(capsys, *args, "--out", str(tmp_path / "a"), *FAST)
    _, b, _ = run_cli(capsys, *args, "--out", str(tmp_path / "b"), *FAST)
    ra, rb = (json.loads(Path(x[-1]).read_text()) for x in (a, b))
    assert ra["metrics"] == rb["metrics"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--benchmark", "synthetic-mv", "--objective", "mv2dd"], "did you mean 'mv2d'"),
        (["--benchmark", "hnad", "--objective", "mv2d"], "did you mean 'hand'"),
        (["--benchmark", "synthetic-mv", "--set", "train.lrr=1"], "unknown key 'train.lrr'"),
        (["--objective", "mv2d"], "no benchmark given"),
        (["--benchmark", "caltech20", "--root", "/nonexistent/c20"], "does not exist"),
        (["--benchmark", "synthetic-mv", "--set", "benchmark.n_views=0"], "option n_views"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(tmp_path, capsys, args, message):
    code, lines, err = run_cli(capsys, *args, "--out", str(tmp_path))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.json"))


def test_config_file_errors_name_the_file(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[model]\nz_dim = 'big'\n")
    code, _, err = run_cli(
        capsys, "--benchmark", "synthetic-mv", "--config", str(cfg), "--out", str(tmp_path)
    )
    assert code == 2 and f"{cfg}: 'model.z_dim': expected int" in err


def test_help_explains_configuration(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "--set" in text and "last line" in text and "--config" in text
