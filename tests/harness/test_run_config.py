"""Run configuration: TOML tables into flat dataclasses, strict errors naming file and key."""

from __future__ import annotations

import pytest

from mv2d_bench.config import ConfigError, load_config, parse_value, run_key
from mv2d_bench.harness.tasks.mvc import MvcLossConfig, MvcModelConfig

MVC = {"model": MvcModelConfig, "loss": MvcLossConfig}


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_file_values_are_read_and_typed(tmp_path):
    path = write(
        tmp_path,
        '[run]\nbenchmark = "hand"\nobjective = "vib"\n[train]\nlr = 1\nlr_milestones = [5]\n'
        "[model]\nz_dim = 32\nbottleneck = false\n[objective]\nbeta = 0.01\n",
    )
    cfg = load_config(path)
    assert cfg.run.benchmark == "hand" and cfg.run.objective == "vib"
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)  # int accepted as float
    assert cfg.train.lr_milestones == [5]
    assert cfg.section("model").z_dim == 32 and cfg.section("model").bottleneck is False
    assert cfg.objective == {"beta": 0.01, "weight": 1.0}  # resolved with defaults
    assert cfg.train.epochs == 160  # dataclass default


def test_unknown_key_names_the_file_and_the_key(tmp_path):
    path = write(tmp_path, "[train]\nlrr = 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, task_sections=MVC)
    assert str(path) in str(err.value) and "'train.lrr'" in str(err.value)
    assert "lr_milestones" in str(err.value)  # lists what is accepted


def test_wrong_type_names_the_file_key_and_expected_type(tmp_path):
    path = write(tmp_path, '[train]\nepochs = "ten"\n')
    with pytest.raises(ConfigError, match=r"run\.toml: 'train\.epochs': expected int, got 'ten'"):
        load_config(path, task_sections=MVC)
    path = write(tmp_path, "[model]\nbottleneck = 1\n")
    with pytest.raises(ConfigError, match=r"'model\.bottleneck': expected bool"):
        load_config(path, task_sections=MVC)


def test_unknown_table_and_non_table(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown table \[optimiser\]"):
        load_config(write(tmp_path, "[optimiser]\nlr = 1\n"), task_sections=MVC)
    with pytest.raises(ConfigError, match="must be a table"):
        load_config(write(tmp_path, "epochs = 3\n"), task_sections=MVC)


def test_task_sections_come_from_the_benchmark_family(tmp_path):
    cfg = load_config(overrides=["run.benchmark=synthetic-mv", "model.z_dim=16"])
    assert isinstance(cfg.section("model"), MvcModelConfig) and cfg.section("model").z_dim == 16


def test_set_overrides_parse_toml_values_and_win(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 3\nlr = 0.5\n")
    cfg = load_config(
        path,
        overrides=["train.lr=1e-4", "train.betas=[0.9, 0.99]", "train.progress=false"],
        cli={"train": {"epochs": 7, "lr": 0.2}},
        task_sections=MVC,
    )
    assert cfg.train.epochs == 7  # command line over file
    assert cfg.train.lr == 1e-4  # --set over both
    assert cfg.train.betas == [0.9, 0.99] and cfg.train.progress is False
    assert parse_value("mvnncor") == "mvnncor"  # a bare word is a string
    assert parse_value("[30, 60]") == [30, 60]


@pytest.mark.parametrize(
    "item, message",
    [
        ("train.lr", "expected table.key=value"),
        ("lr=1", "expected table.key=value"),
        ("train.lr=fast", "--set train.lr: 'train.lr': expected float, got 'fast'"),
        ("train.epochs=0", "'train.epochs' must be an integer >= 1"),
        ("objective.gamma=2", "unknown key 'objective.gamma' for objective 'vib'"),
        ("objective.beta=true", "'objective.beta': expected float"),
    ],
)
def test_bad_overrides(item, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["run.objective=vib", item], task_sections=MVC)
    assert message in str(err.value)


def test_run_key_ignores_only_volatile_keys():
    a = load_config(overrides=["run.objective=vib"], task_sections=MVC).to_dict()
    b = load_config(
        overrides=["run.objective=vib", "run.threads=2", "run.root=/x", "train.progress=false"],
        task_sections=MVC,
    ).to_dict()
    c = load_config(overrides=["run.objective=vib", "objective.beta=0.1"], task_sections=MVC)
    d = load_config(overrides=["run.objective=vib", "run.seed=1"], task_sections=MVC)
    assert run_key(a) == run_key(b)
    assert run_key(a) != run_key(c.to_dict())
    assert run_key(a) != run_key(d.to_dict())
