"""VSD, VCD, VMD and MV2D against an independent NumPy/SciPy computation of their formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, rel_entr

from mv2d_bench.objectives import create
from mv2d_bench.objectives.mv2d import MV2D
from mv2d_bench.objectives.vcd import VCD
from mv2d_bench.objectives.vmd import VMD
from mv2d_bench.objectives.vsd import VSD
from mv2d_bench.views import ViewOutputs

ITEMS, CLASSES = 17, 5


def np_kl(teacher: np.ndarray, student: np.ndarray, temperature: float, mask) -> float:
    """KL(softmax(t/T) || softmax(s/T)) per item with scipy, averaged over the valid items."""
    p = np.exp(log_softmax(teacher / temperature, axis=-1))
    q = np.exp(log_softmax(student / temperature, axis=-1))
    per_item = rel_entr(p, q).sum(axis=-1)
    return float(per_item.mean() if mask is None else per_item[mask].mean())


def random_case(n: int, masked: bool, seed: int):
    rng = np.random.default_rng(seed)
    logits = {
        "obs": [3 * rng.standard_normal((ITEMS, CLASSES)) for _ in range(n)],
        "rep": [3 * rng.standard_normal((ITEMS, CLASSES)) for _ in range(n)],
        "loo": [3 * rng.standard_normal((ITEMS, CLASSES)) for _ in range(n)],
        "fused": 3 * rng.standard_normal((ITEMS, CLASSES)),
    }
    mask = None
    if masked:
        mask = rng.random(ITEMS) < 0.6
        mask[:2] = [True, False]  # at least one valid and one ignored item
    return logits, mask


def to_outputs(logits, mask, requires_grad: bool = False) -> ViewOutputs:
    def t(a):
        return torch.tensor(a, dtype=torch.float32, requires_grad=requires_grad)

    return ViewOutputs(
        obs_logits=[t(a) for a in logits["obs"]],
        rep_logits=[t(a) for a in logits["rep"]],
        loo_logits=[t(a) for a in logits["loo"]],
        fused_logits=t(logits["fused"]),
        mask=None if mask is None else torch.tensor(mask),
    )


def reference(name: str, logits, mask, temperature: float) -> dict[str, float]:
    obs, rep, loo, fused = logits["obs"], logits["rep"], logits["loo"], logits["fused"]
    n = len(rep)

    def kl(a, b):
        return np_kl(a, b, temperature, mask)

    others = [[j for j in range(n) if j != i] for i in range(n)]
    if name == "vsd":
        return {"vsd": sum(kl(obs[i], rep[i]) for i in range(n))}
    if name == "vcd":
        return {"vcd": sum(np.mean([kl(obs[j], rep[i]) for j in others[i]]) for i in range(n))}
    if name == "vmd":
        return {"vmd": sum(np.mean([kl(rep[j], rep[i]) for j in others[i]]) for i in range(n))}
    out = {"sufficiency": sum(kl(obs[i], rep[i]) for i in range(n))}
    if n > 1:
        out["consistency"] = sum(kl(fused, loo[i]) for i in range(n))
    return out


CASES = [
    (name, n)
    for name in ("vsd", "vcd", "vmd", "mv2d")
    for n in (1, 2, 3, 6)
    if not (name in ("vcd", "vmd") and n < 2)
]


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize(("name", "n"), CASES)
def test_terms_match_scipy(name, n, temperature, masked):
    logits, mask = random_case(n, masked, seed=n * 10 + int(temperature) + masked)
    got = create(name, temperature=temperature)(to_outputs(logits, mask))
    want = reference(name, logits, mask, temperature)
    assert set(got) == set(want)
    for key, value in want.items():
        assert value > 0.01
        assert got[key].item() == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize(("name", "n"), [("vsd", 2), ("vcd", 3), ("vmd", 2), ("mv2d", 3)])
def test_weight_scales_every_term(name, n):
    logits, mask = random_case(n, True, seed=7)
    unit = create(name, temperature=2.0)(to_outputs(logits, mask))
    scaled = create(name, temperature=2.0, weight=2.5)(to_outputs(logits, mask))
    for key in unit:
        assert scaled[key].item() == pytest.approx(2.5 * unit[key].item(), rel=1e-6)


@pytest.mark.parametrize("cls", [VCD, VMD])
def test_cross_and_mutual_refuse_one_view(cls):
    logits, _ = random_case(1, False, seed=0)
    with pytest.raises(ValueError, match=rf"'{cls.name}' needs at least 2 views; got 1"):
        cls()(to_outputs(logits, None))


@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("masked", [False, True])
def test_mv2d_with_one_view_equals_vsd(temperature, masked):
    logits, mask = random_case(1, masked, seed=3)
    outputs = to_outputs(logits, mask)
    outputs.loo_logits = None  # not defined for one view, and not required
    outputs.fused_logits = None
    mv2d = MV2D(temperature=temperature)(outputs)
    vsd = VSD(temperature=temperature)(outputs)
    assert list(mv2d) == ["sufficiency"]
    assert sum(mv2d.values()).item() == pytest.approx(vsd["vsd"].item(), abs=1e-6)
    assert vsd["vsd"].item() > 0.01


def equal_case(n: int):
    """Students equal to their teachers up to a per-item shift (same softmax)."""
    rng = np.random.default_rng(11)
    base = 3 * rng.standard_normal((ITEMS, CLASSES))
    shift = rng.standard_normal((ITEMS, 1))
    logits = {
        "obs": [base.copy() for _ in range(n)],
        "rep": [base + shift for _ in range(n)],
        "loo": [base - shift for _ in range(n)],
        "fused": base.copy(),
    }
    return logits


@pytest.mark.parametrize(
    ("name", "n"), [("vsd", 1), ("vsd", 3), ("vcd", 3), ("vmd", 3), ("mv2d", 1), ("mv2d", 3)]
)
def test_terms_zero_iff_student_equals_teacher(name, n):
    logits = equal_case(n)
    same = create(name, temperature=2.0)(to_outputs(logits, None))
    for key, value in same.items():
        assert abs(value.item()) < 1e-6, key
    # perturb one student per term: each term becomes strictly positive
    logits["rep"][0] = logits["rep"][0] + np.linspace(0, 2, CLASSES)
    logits["loo"][-1] = logits["loo"][-1] + np.linspace(2, 0, CLASSES)
    moved = create(name, temperature=2.0)(to_outputs(logits, None))
    for key, value in moved.items():
        assert value.item() > 1e-3, key


def student_grad(teachers: list[np.ndarray], student: np.ndarray, temperature, mask):
    """d/ds of mean_j mean_items KL(p_j || softmax(s/T)), teachers constant: (q - p_j)/(T N)."""
    q = np.exp(log_softmax(student / temperature, axis=-1))
    valid = np.ones(len(student), bool) if mask is None else mask
    grad = np.zeros_like(student)
    for t in teachers:
        p = np.exp(log_softmax(t / temperature, axis=-1))
        grad += (q - p) / (temperature * valid.sum())
    grad[~valid] = 0.0
    return grad / len(teachers)


@pytest.mark.parametrize("masked", [False, True])
def test_default_detach_student_gradient_only(masked):
    temperature, n = 3.0, 3
    logits, mask = random_case(n, masked, seed=5)
    outputs = to_outputs(logits, mask, requires_grad=True)
    sum(VSD(temperature=temperature)(outputs).values()).backward()
    for i in range(n):
        assert outputs.obs_logits[i].grad is None  # teacher: no gradient
        want = student_grad([logits["obs"][i]], logits["rep"][i], temperature, mask)
        np.testing.assert_allclose(outputs.rep_logits[i].grad.numpy(), want, atol=1e-6)

    outputs = to_outputs(logits, mask, requires_grad=True)
    sum(MV2D(temperature=temperature)(outputs).values()).backward()
    assert outputs.fused_logits.grad is None
    for i in range(n):
        assert outputs.obs_logits[i].grad is None
        want = student_grad([logits["fused"]], logits["loo"][i], temperature, mask)
        np.testing.assert_allclose(outputs.loo_logits[i].grad.numpy(), want, atol=1e-6)
        assert np.abs(outputs.rep_logits[i].grad.numpy()).max() > 1e-4

    outputs = to_outputs(logits, mask, requires_grad=True)
    sum(VCD(temperature=temperature)(outputs).values()).backward()
    for i in range(n):
        assert outputs.obs_logits[i].grad is None
        teachers = [logits["obs"][j] for j in range(n) if j != i]
        want = student_grad(teachers, logits["rep"][i], temperature, mask)
        np.testing.assert_allclose(outputs.rep_logits[i].grad.numpy(), want, atol=1e-6)

    # VMD: every P_zi is a student and a teacher; the detached teacher adds no gradient
    outputs = to_outputs(logits, mask, requires_grad=True)
    sum(VMD(temperature=temperature)(outputs).values()).backward()
    for i in range(n):
        teachers = [logits["rep"][j] for j in range(n) if j != i]
        want = student_grad(teachers, logits["rep"][i], temperature, mask)
        np.testing.assert_allclose(outputs.rep_logits[i].grad.numpy(), want, atol=1e-6)


def test_detach_teacher_false_pushes_the_teacher():
    logits, mask = random_case(2, True, seed=9)
    outputs = to_outputs(logits, mask, requires_grad=True)
    sum(MV2D(detach_teacher=False)(outputs).values()).backward()
    assert outputs.fused_logits.grad.abs().max().item() > 1e-4
    for i in range(2):
        assert outputs.obs_logits[i].grad.abs().max().item() > 1e-4

    outputs = to_outputs(logits, mask, requires_grad=True)
    sum(VMD(detach_teacher=False)(outputs).values()).backward()
    want = student_grad([logits["rep"][1]], logits["rep"][0], 1.0, mask)
    got = outputs.rep_logits[0].grad.numpy()
    assert np.abs(got - want).max() > 1e-4  # the teacher direction adds to the student's
