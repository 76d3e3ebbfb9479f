"""spconv on the CPU under the one-thread guard: with torch at 2 threads, guarded sparse
convolutions (forward and backward) equal a dense F.conv3d reference, and no spconv kernel ever
runs with more than one thread."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

spconv = pytest.importorskip("spconv.pytorch", reason="spconv (the seg extra) is not installed")

from mv2d_bench.models.seg.spconv_guard import Guarded, one_thread, patch_spconv  # noqa: E402

D, C_IN, C_OUT = 20, 6, 5


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def sparse_input(seed: int = 0, n: int = 3000):
    g = torch.Generator().manual_seed(seed)
    coords = torch.unique(torch.randint(0, D, (n, 3), generator=g), dim=0)
    feats = torch.randn(len(coords), C_IN, generator=g, dtype=torch.float64)
    idx = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32), coords.int()], 1)
    return coords, feats, idx


def dense(coords, feats, size):
    grid = torch.zeros(1, size, size, size, feats.shape[1], dtype=feats.dtype)
    grid = grid.index_put((torch.zeros(len(coords), dtype=torch.long), *coords.T), feats)
    return grid.permute(0, 4, 1, 2, 3)


def weight_dense(w):
    """spconv 2.x keeps (out, k, k, k, in); conv3d wants (out, in, k, k, k)."""
    return w.permute(0, 4, 1, 2, 3)


@pytest.mark.parametrize("kind", ["subm", "strided"])
def test_guarded_conv_equals_dense_conv3d_with_two_threads(two_threads, kind):
    torch.manual_seed(0)
    if kind == "subm":
        module = spconv.SubMConv3d(C_IN, C_OUT, 3, bias=False, indice_key="s")
    else:
        module = spconv.SparseConv3d(C_IN, C_OUT, 2, stride=2, bias=False, indice_key="d")
    conv = Guarded(module.double())
    coords, feats, idx = sparse_input()
    x = feats.clone().requires_grad_(True)
    out = conv(spconv.SparseConvTensor(x, idx, [D, D, D], 1))
    assert torch.get_num_threads() == 2  # the guard restored the caller's threads
    g = torch.randn(out.features.shape, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)  # fmt: skip
    (out.features * g).sum().backward()

    xd = feats.clone().requires_grad_(True)
    w = weight_dense(module.weight.detach()).clone().requires_grad_(True)
    if kind == "subm":
        ref = F.conv3d(dense(coords, xd, D), w, padding=1)[0]
    else:
        ref = F.conv3d(dense(coords, xd, D), w, stride=2)[0]
    sites = out.indices[:, 1:].long()
    ref_at = ref.permute(1, 2, 3, 0)[sites[:, 0], sites[:, 1], sites[:, 2]]
    (ref_at * g).sum().backward()
    torch.testing.assert_close(out.features, ref_at, rtol=0, atol=1e-12)
    torch.testing.assert_close(x.grad, xd.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(module.weight.grad, w.grad.permute(0, 2, 3, 4, 1), rtol=0,
                               atol=1e-10)  # fmt: skip
    if kind == "strided":
        assert len(out.indices) == len(torch.unique(coords // 2, dim=0))


def test_no_spconv_kernel_sees_two_threads(two_threads, monkeypatch):
    """Record torch's thread count inside every spconv op (index pairs, conv, conv backward)."""
    import spconv.pytorch.ops as ops

    patch_spconv()
    seen: list[tuple[str, int]] = []
    for name in ("get_indice_pairs", "indice_conv", "indice_conv_backward"):
        original = getattr(ops, name)

        def spy(*args, _f=original, _n=name, **kwargs):
            seen.append((_n, torch.get_num_threads()))
            return _f(*args, **kwargs)

        monkeypatch.setattr(ops, name, spy)
    torch.manual_seed(0)
    net = [
        Guarded(spconv.SubMConv3d(C_IN, 8, 3, indice_key="s0")),
        Guarded(spconv.SparseConv3d(8, 8, 2, stride=2, indice_key="d1")),
        Guarded(spconv.SubMConv3d(8, 8, 3, indice_key="s1")),
        Guarded(spconv.SparseInverseConv3d(8, C_OUT, 2, indice_key="d1")),
    ]
    coords, feats, idx = sparse_input(n=800)
    x = spconv.SparseConvTensor(feats.float().requires_grad_(True), idx, [D, D, D], 1)
    for m in net:
        x = m(x)
    x.features.square().sum().backward()
    names = {n for n, _ in seen}
    assert names == {"get_indice_pairs", "indice_conv", "indice_conv_backward"}
    assert {t for _, t in seen} == {1}
    assert torch.get_num_threads() == 2
    assert all(p.grad is not None for m in net for p in m.parameters())


def test_inverse_conv_guarded_equals_a_one_thread_run(two_threads):
    torch.manual_seed(0)
    down = spconv.SparseConv3d(C_IN, 8, 2, stride=2, indice_key="d").double()
    up = spconv.SparseInverseConv3d(8, C_OUT, 2, indice_key="d").double()
    coords, feats, idx = sparse_input(seed=3)

    def run(guard: bool):
        x = feats.clone().requires_grad_(True)
        t = spconv.SparseConvTensor(x, idx, [D, D, D], 1)
        if guard:
            y = Guarded(up)(Guarded(down)(t))
        else:
            with one_thread():
                y = up(down(t))
        for p in (*down.parameters(), *up.parameters()):
            p.grad = None
        with one_thread() if not guard else contextlib.nullcontext():
            y.features.sin().sum().backward()
        return y.features.detach(), x.grad, down.weight.grad.clone(), up.weight.grad.clone()

    for a, b in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_one_thread_restores_the_count_after_an_error(two_threads):
    with pytest.raises(RuntimeError, match="boom"), one_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
