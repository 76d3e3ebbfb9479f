"""Objectives by contract: a plain torch.nn.Module with name, needs (or needs_for) and forward is
accepted through the entry point, created by name, checked by config, trained by the trainer
and recorded; a class lacking a part is broken, naming it. No plugin distribution needs to be
installed: the distribution here is written the way an installer lays one out (a module and a
.dist-info folder) into a temporary folder put on sys.path."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from mv2d_bench import objectives
from mv2d_bench.config import ConfigError, load_config
from mv2d_bench.harness.runner import make_task
from mv2d_bench.harness.trainer import Trainer
from mv2d_bench.objectives.contract import (
    call_objective,
    check_objective_class,
    contract_problems,
    hparams_of,
    needs_of,
    parameters_of,
)
from mv2d_bench.registry import BrokenPluginError, registry
from mv2d_bench.views import ViewOutputs

# A module that never imports mv2d_bench: the contract alone.
PLAIN_MODULE = textwrap.dedent(
    '''
    import torch
    from torch import nn


    class FusedKL(nn.Module):
        """sum_i KL(P_Z || P_zi), teacher detached, mean over items, times weight."""

        name = "tmp-fused-kl"
        needs = frozenset({"fused_logits", "rep_logits"})

        def __init__(self, temperature: float = 1.0, weight: float = 1.0):
            super().__init__()
            self.temperature, self.weight = float(temperature), float(weight)

        def forward(self, outputs):
            log_p = torch.log_softmax(outputs.fused_logits.detach() / self.temperature, -1)
            total = 0.0
            for z in outputs.rep_logits:
                log_q = torch.log_softmax(z / self.temperature, -1)
                total = total + (log_p.exp() * (log_p - log_q)).sum(-1).mean()
            return {"fused_kl": self.weight * total}


    class PerN(nn.Module):
        name = "tmp-per-n"

        def needs_for(self, n_views):
            return frozenset({"rep_mean"} if n_views > 1 else ())

        def forward(self, outputs):
            return {"spread": torch.stack(outputs.rep_mean).var(0).mean()}


    class NoForward(nn.Module):
        name = "tmp-no-forward"
        needs = frozenset({"rep_logits"})
    '''
)

ENTRY_POINTS = """\
[mv2d_bench.objectives]
tmp-fused-kl = mv2d_tmp_plain:FusedKL
tmp-per-n = mv2d_tmp_plain:PerN
tmp-no-forward = mv2d_tmp_plain:NoForward
"""


@pytest.fixture
def plain_dist(tmp_path, monkeypatch):
    """The distribution mv2d-tmp-plain 0.4 on sys.path, seen by a fresh registry scan."""
    (tmp_path / "mv2d_tmp_plain.py").write_text(PLAIN_MODULE, encoding="utf-8")
    info = tmp_path / "mv2d_tmp_plain-0.4.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mv2d-tmp-plain\nVersion: 0.4\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry("objectives").refresh()
    yield tmp_path
    monkeypatch.undo()
    registry("objectives").refresh()


# -- the contract check ---------------------------------------------------------------------------
class Good(nn.Module):
    name = "good"
    needs = frozenset({"rep_logits"})

    def forward(self, outputs):
        return {}


class OnlyNeedsFor(nn.Module):
    name = "only-needs-for"

    def needs_for(self, n_views):
        return frozenset({"rep"})

    def forward(self, outputs):
        return {}


class Nameless(Good):
    name = ""


class UnknownField(Good):
    needs = frozenset({"rep_logits", "features"})


class TwoArgForward(Good):
    def forward(self, outputs, extra):
        return {}


class NotAModule:
    name = "x"
    needs = frozenset()

    def forward(self, outputs):
        return {}


class Bare(nn.Module):
    pass


def test_classes_that_follow_the_contract_pass_and_builtins_still_do():
    assert contract_problems(Good) == []
    assert contract_problems(OnlyNeedsFor) == []
    for name in ("baseline", "vib", "cib", "vsd", "vcd", "vmd", "mv2d"):
        assert check_objective_class(objectives.get(name)) is None


def test_each_missing_part_is_named():
    assert contract_problems(Nameless) == ["attribute 'name' is ''; expected a non-empty string"]
    problems = contract_problems(UnknownField)
    assert len(problems) == 1 and "unknown ViewOutputs field(s) features" in problems[0]
    assert contract_problems(TwoArgForward) == [
        "method 'forward' has the signature forward(self, outputs, extra); expected "
        "forward(self, outputs)"
    ]
    assert contract_problems(Bare) == [
        "missing attribute 'name' (a non-empty string)",
        "missing attribute 'needs' (a set of ViewOutputs field names) or method "
        "'needs_for(n_views)'",
        "missing method 'forward(outputs) -> dict[str, Tensor]'",
    ]
    message = check_objective_class(NotAModule)
    assert message.startswith("expected a torch.nn.Module subclass, got NotAModule")
    assert "an objective is a torch.nn.Module subclass with 'name'" in message
    assert check_objective_class(len).startswith("expected a class, got builtin_function_or_method")


def test_parameters_hparams_and_needs_of_a_plain_module():
    class P(nn.Module):
        name, needs = "p", frozenset({"rep"})

        def __init__(self, beta: float = 0.5, mode: str = "a", *args, **kwargs):
            super().__init__()
            self.beta = beta
            self.lin = nn.Linear(2, 2)

        def forward(self, outputs):
            return {}

    assert parameters_of(P) == {"beta": 0.5, "mode": "a"}
    assert hparams_of(P(beta=2.0)) == {"beta": 2.0, "mode": "a"}  # no attribute 'mode': default
    assert needs_of(P) == needs_of(P(), 3) == frozenset({"rep"})
    assert needs_of(OnlyNeedsFor) == frozenset()  # per instance and n only
    assert needs_of(OnlyNeedsFor(), 2) == frozenset({"rep"})
    vib = objectives.create("vib", beta=0.1)
    assert parameters_of(type(vib)) == {"beta": 1e-3, "weight": 1.0}
    assert hparams_of(vib) == {"beta": 0.1, "weight": 1.0}


def test_call_objective_rejects_what_is_not_a_dict_of_scalars():
    class Returns(nn.Module):
        name, needs = "returns", frozenset()

        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, outputs):
            return self.value

    out = ViewOutputs()
    assert call_objective(Returns({"a": torch.tensor(1.0)}), out) == {"a": torch.tensor(1.0)}
    with pytest.raises(TypeError, match="'returns': forward returned list; expected a dict"):
        call_objective(Returns([torch.tensor(1.0)]), out)
    with pytest.raises(TypeError, match=r"term 'a' = a tensor of shape \[3\]; expected"):
        call_objective(Returns({"a": torch.ones(3)}), out)
    with pytest.raises(TypeError, match="term 'a' = float"):
        call_objective(Returns({"a": 1.0}), out)


# -- through the entry point ----------------------------------------------------------------------
def test_plain_module_is_listed_ok_and_the_incomplete_one_broken(plain_dist):
    reg = registry("objectives")
    ok = reg.entry("tmp-fused-kl")
    assert (ok.status, ok.error) == ("ok", None)
    assert (ok.distribution, ok.version) == ("mv2d-tmp-plain", "0.4")
    assert reg.entry("tmp-per-n").status == "ok"
    broken = reg.entry("tmp-no-forward")
    assert broken.status == "broken"
    assert broken.error == (
        "objective 'tmp-no-forward' (mv2d_tmp_plain:NoForward, from mv2d-tmp-plain 0.4) is not "
        "usable: missing method 'forward(outputs) -> dict[str, Tensor]'"
    )
    with pytest.raises(BrokenPluginError, match="missing method 'forward"):
        objectives.create("tmp-no-forward")
    assert objectives.create("vib").name == "vib"  # the rest keeps working


def test_plain_module_is_created_by_name_with_checked_parameters(plain_dist):
    obj = objectives.create("tmp-fused-kl", temperature=2.0, weight=0.5)
    assert not isinstance(obj, objectives.Objective)
    assert type(obj).__module__ == "mv2d_tmp_plain"
    with pytest.raises(TypeError, match="accepts: temperature=1.0, weight=1.0"):
        objectives.create("tmp-fused-kl", beta=1.0)
    cfg = load_config(overrides=["run.objective=tmp-fused-kl", "objective.temperature=3"])
    assert cfg.objective == {"temperature": 3.0, "weight": 1.0}
    with pytest.raises(ConfigError, match="unknown key 'objective.beta'.*temperature=1.0"):
        load_config(overrides=["run.objective=tmp-fused-kl", "objective.beta=1"])


TINY = [
    "run.benchmark=synthetic-mv",
    "run.threads=1",
    "benchmark.samples=120",
    "benchmark.n_views=3",
    "benchmark.dims=6",
    "train.progress=false",
    "train.batch_size=32",
    "model.hidden=[16, 8]",
    "model.z_dim=4",
    "model.bottleneck_hidden=8",
    "model.relation_rank=4",
    "model.classifier_hidden=8",
]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_plain_module_trains_one_step_through_the_trainer(plain_dist):
    cfg = load_config(
        overrides=[*TINY, "run.objective=tmp-fused-kl", "objective.temperature=2", "train.epochs=1"]
    )
    trainer = Trainer(make_task(cfg), cfg)
    trainer.build()
    assert trainer.needs == frozenset({"fused_logits", "rep_logits"})
    batch = next(iter(trainer.task.train_batches(0, torch.Generator().manual_seed(5))))

    # the term as an independent computation on the same forward pass (same dropout draws)
    trainer.model.train()
    torch.manual_seed(11)
    with torch.no_grad():
        out = trainer.task.forward(trainer.model, batch, trainer.needs)
    log_p = _log_softmax(out.fused_logits.double().numpy() / 2.0)
    expected = sum(
        (np.exp(log_p) * (log_p - _log_softmax(z.double().numpy() / 2.0))).sum(-1).mean()
        for z in out.rep_logits
    )

    before = [p.detach().clone() for p in trainer.model.parameters()]
    torch.manual_seed(11)
    terms = trainer.train_step(batch)
    assert terms["obj/fused_kl"].item() == pytest.approx(expected, rel=1e-5)
    assert expected > 1e-4
    after = list(trainer.model.parameters())
    changed = sum(not torch.equal(a, p) for a, p in zip(before, after, strict=True))
    assert changed > 0  # the optimiser stepped

    result = trainer.fit()
    assert result.objective_params == {"temperature": 2.0, "weight": 1.0}


def test_needs_for_only_module_gets_its_fields_for_n_views(plain_dist):
    cfg = load_config(overrides=[*TINY, "run.objective=tmp-per-n", "train.epochs=1"])
    trainer = Trainer(make_task(cfg), cfg)
    trainer.build()
    assert trainer.needs == frozenset({"rep_mean"})
    batch = next(iter(trainer.task.train_batches(0, torch.Generator().manual_seed(5))))
    terms = trainer.train_step(batch)
    assert terms["obj/spread"].item() > 0
