"""states_equal, what the resume tests compare checkpoints with, tells states apart bit by bit."""

import torch

from mv2d_bench.harness.checkpoints import states_equal


def test_states_equal_is_bitwise():
    a = {"w": torch.tensor([1.0, 2.0]), "rng": [1, (2, 3)], "epoch": 4}
    assert states_equal(a, {"w": torch.tensor([1.0, 2.0]), "rng": [1, (2, 3)], "epoch": 4})
    assert not states_equal(a, {**a, "w": torch.tensor([1.0, 2.0 + 2**-22])})  # one ulp off
    assert not states_equal(a, {**a, "w": torch.tensor([1.0, 2.0], dtype=torch.float64)})
    assert not states_equal(a, {**a, "rng": [1, (2, 4)]})
    assert not states_equal(a, {"w": a["w"], "rng": a["rng"]})  # a key missing
    assert not states_equal([torch.zeros(2)], [torch.zeros(2), torch.zeros(2)])
