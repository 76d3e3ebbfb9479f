"""FastDropout: inverted dropout whose keep-mask is Bernoulli(1 - p), element by element."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from mv2d_bench.models.dropout import FastDropout, keep_mask


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_fast_dropout_is_inverted_dropout(p):
    d = FastDropout(p).train()
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = d(x)
    zero = float((y == 0).float().mean())
    assert abs(zero - p) < 0.005
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    assert torch.equal(d.eval()(x), x)


def test_half_mask_bits_are_independent_fair_coins():
    torch.manual_seed(1)
    m = keep_mask((1000, 64), 0.5).float()
    # every bit position of the packed words is fair (binomial test per column)
    worst = min(stats.binomtest(int(c), 1000, 0.5).pvalue for c in m.sum(0).tolist())
    assert worst > 1e-4
    # neighbouring elements (bits of one word) are uncorrelated
    r = torch.corrcoef(torch.stack([m[:, :-1].reshape(-1), m[:, 1:].reshape(-1)]))[0, 1]
    assert abs(float(r)) < 0.02
    assert m.shape == (1000, 64) and set(m.unique().tolist()) == {0.0, 1.0}


def test_half_mask_is_the_bits_of_uniform_32_bit_words():
    """Element 32 w + k is bit k of the w-th draw of torch.randint(0, 2**32): the mask (and so
    every training run) is the same random stream as before the unpacking was vectorised."""
    torch.manual_seed(3)
    words = torch.randint(0, 2**32, ((5 * 77 + 31) // 32,), dtype=torch.int64).tolist()
    want = [(words[i // 32] >> (i % 32)) & 1 == 1 for i in range(5 * 77)]
    torch.manual_seed(3)
    assert keep_mask((5, 77), 0.5).reshape(-1).tolist() == want
    torch.manual_seed(3)
    m = FastDropout(0.5).train().mask((5, 77), torch.zeros((), dtype=torch.float64))
    assert m.dtype == torch.float64 and m.reshape(-1).tolist() == [2.0 * k for k in want]


def test_invalid_rate_is_an_error():
    with pytest.raises(ValueError, match="dropout"):
        FastDropout(1.0)
