"""Creating objectives by name, their declared fields, and the errors for missing fields."""

from __future__ import annotations

import pytest
import torch

from mv2d_bench.objectives import create, names
from mv2d_bench.views import MissingFieldError, ViewOutputs

BUILTINS = ["baseline", "cib", "mv2d", "vcd", "vib", "vmd", "vsd"]


def full_outputs(n: int) -> ViewOutputs:
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return ViewOutputs(
        obs=[r(8, 5) for _ in range(n)],
        obs_logits=[r(8, 3) for _ in range(n)],
        rep=[r(8, 4) for _ in range(n)],
        rep_mean=[r(8, 4) for _ in range(n)],
        rep_std=[torch.rand(8, 4, generator=g) + 0.1 for _ in range(n)],
        rep_logits=[r(8, 3) for _ in range(n)],
        fused_logits=r(8, 3),
        loo_logits=[r(8, 3) for _ in range(n)],
        target=torch.randint(0, 3, (8,), generator=g),
    )


def test_builtins_registered_and_created_with_defaults():
    assert set(BUILTINS) <= set(names())
    for name in BUILTINS:
        obj = create(name)
        assert obj.name == name
        assert obj.formula
        assert obj.weight == 1.0
        terms = obj(full_outputs(2))
        assert all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    assert create("baseline")(full_outputs(2)) == {}
    assert set(create("mv2d")(full_outputs(2))) == {"sufficiency", "consistency"}
    assert create("vsd").hparams() == {"weight": 1.0, "temperature": 1.0, "detach_teacher": True}


@pytest.mark.parametrize(
    ("name", "field", "n"),
    [
        ("vsd", "rep_logits", 1),
        ("vcd", "obs_logits", 2),
        ("vmd", "rep_logits", 2),
        ("mv2d", "loo_logits", 2),
        ("mv2d", "fused_logits", 3),
        ("vib", "rep_std", 1),
        ("cib", "obs", 2),
    ],
)
def test_missing_field_names_objective_and_field(name, field, n):
    outputs = full_outputs(n)
    setattr(outputs, field, None)
    with pytest.raises(MissingFieldError) as err:
        create(name)(outputs)
    assert f"'{name}'" in str(err.value) and field in str(err.value)


def test_mv2d_needs_depend_on_view_count():
    mv2d = create("mv2d")
    assert mv2d.needs_for(1) == {"obs_logits", "rep_logits"}
    assert (
        mv2d.needs_for(2)
        == mv2d.needs
        == {"obs_logits", "rep_logits", "fused_logits", "loo_logits"}
    )


def test_per_view_lists_must_agree_in_length():
    outputs = full_outputs(3)
    outputs.loo_logits = outputs.loo_logits[:2]
    with pytest.raises(ValueError, match=r"loo_logits has 2 entries; expected one per view \(3\)"):
        create("mv2d")(outputs)


def test_unknown_parameter_and_bad_temperature():
    with pytest.raises(TypeError, match="no parameter"):
        create("vsd", beta=1.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        create("vmd", temperature=0.0)
