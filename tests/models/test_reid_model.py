"""The three-branch ReID network: shapes, last stride 1, bottleneck mean at eval, local weights,
view groups for the objectives, and the batch-hard triplet loss against a brute-force loop."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision")

from mv2d_bench.models.reid import (  # noqa: E402
    GROUPS,
    ReidNet,
    load_backbone_weights,
    resnet_trunk,
    view_outputs,
)
from mv2d_bench.models.reid_losses import batch_hard_triplet, pairwise_euclidean  # noqa: E402

C, Z = 5, 8
H, W = 32, 16


def _net(**kw):
    torch.manual_seed(0)
    return ReidNet(C, backbone="resnet18", z_dim=Z, hidden=(32, 16), **kw)


def _images(n, seed=0):
    return torch.rand(n, 3, H, W, generator=torch.Generator().manual_seed(seed))


def test_last_stride_one_halves_the_downsampling():
    x = torch.rand(2, 3, 64, 32)
    trunk1, d = resnet_trunk("resnet18", last_stride=1)
    trunk2, _ = resnet_trunk("resnet18", last_stride=2)
    assert d == 512
    assert trunk1(x).shape == (2, 512, 4, 2)  # H/16 x W/16
    assert trunk2(x).shape == (2, 512, 2, 1)  # H/32 x W/32
    x = torch.rand(1, 3, 288, 144)
    assert trunk1(x).shape[-2:] == (18, 9)  # the paper's 288 x 144 input: 18 x 9 maps


def test_forward_shapes_of_every_branch():
    net = _net().train()
    out = net(_images(4), _images(4, 1), _images(4, 2))
    assert set(out) == {
        "visible",
        "infrared",
        "shared_visible",
        "shared_infrared",
        "shared_intermediate",
    }
    for o in out.values():
        assert o.feat.shape == o.obs.shape == (4, 512)
        assert o.obs_logits.shape == o.rep_logits.shape == (4, C)
        assert o.rep.shape == o.rep_mean.shape == o.rep_std.shape == (4, Z)
        assert bool((o.rep_std > 0).all())
    assert "shared_intermediate" not in net(_images(4), _images(4, 1))


def test_eval_uses_the_bottleneck_mean_and_train_samples():
    net = _net()
    x, y = _images(4), _images(4, 1)
    net.train()
    o = net(x, y)["visible"]
    assert not torch.allclose(o.rep, o.rep_mean)
    # in training z = mean + std * eps: eps recovered from z is ~N(0, 1), not 0
    eps = (o.rep - o.rep_mean) / o.rep_std
    assert 0.5 < eps.std().item() < 1.5 and abs(eps.mean().item()) < 0.5
    net.eval()
    with torch.no_grad():
        a, b = net(x, y), net(x, y)
    for key in a:
        assert torch.equal(a[key].rep, a[key].rep_mean)
        assert torch.equal(a[key].rep, b[key].rep)  # deterministic
    with torch.no_grad():
        expected = net.visible.rep_head(a["visible"].rep_mean)
    torch.testing.assert_close(a["visible"].rep_logits, expected)


def test_shared_branch_is_one_network_for_both_modalities():
    net = _net().eval()
    x, y = _images(3), _images(3, 1)
    with torch.no_grad():
        out = net(x, y)
        alone = net.shared(x)
    torch.testing.assert_close(out["shared_visible"].rep_mean, alone.rep_mean)
    torch.testing.assert_close(out["visible"].rep_mean, net.visible(x).rep_mean)
    assert not torch.allclose(out["visible"].rep_mean, out["shared_visible"].rep_mean)


def test_embed_concatenates_normalised_means():
    net = _net().eval()
    x = _images(3)
    with torch.no_grad():
        f = net.embed(x, "infrared")
        spec, shared = net.infrared(x).rep_mean, net.shared(x).rep_mean
    assert f.shape == (3, 2 * Z) == (3, net.embed_dim)
    torch.testing.assert_close(f[:, :Z], spec / spec.norm(dim=1, keepdim=True))
    torch.testing.assert_close(f[:, Z:], shared / shared.norm(dim=1, keepdim=True))
    net.train()  # embed ignores the mode: means, not samples
    torch.testing.assert_close(net.eval().embed(x, "infrared"), f)
    with pytest.raises(ValueError, match="modality"):
        net.embed(x, "thermal")


def test_weights_load_from_a_local_file_round_trip(tmp_path):
    import torchvision

    torch.manual_seed(123)
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    net = _net(weights=str(path))
    ref_state = ref.state_dict()
    for branch in (net.visible, net.infrared, net.shared):
        got = branch.trunk.state_dict()
        # trunk indices 0,1,4..7 = conv1, bn1, layer1..layer4
        names = {
            "0": "conv1",
            "1": "bn1",
            "4": "layer1",
            "5": "layer2",
            "6": "layer3",
            "7": "layer4",
        }
        assert len(got) == len([k for k in ref_state if not k.startswith("fc.")])
        for key, value in got.items():
            idx, rest = key.split(".", 1)
            assert torch.equal(value, ref_state[f"{names[idx]}.{rest}"]), key
    # DataParallel prefix and {"state_dict": ...} wrappers load too
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref_state.items()}}, path)
    other = torchvision.models.resnet18(weights=None)
    load_backbone_weights(other, path, "resnet18")
    assert torch.equal(other.conv1.weight, ref.conv1.weight)


def test_bad_weight_files_name_the_path(tmp_path):
    import torchvision

    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        _net(weights=str(tmp_path / "nothere.pth"))
    r50 = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), r50)
    with pytest.raises(ValueError, match=r"r50\.pth: not a torchvision resnet18 state dict"):
        _net(weights=str(r50))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="junk.pth: not a torch state dict"):
        _net(weights=str(junk))


def test_view_groups_and_fusion_only_when_needed():
    net = _net().train()
    out = net(_images(4), _images(4, 1), _images(4, 2))
    target = torch.tensor([0, 0, 1, 1])
    for name, keys in GROUPS.items():
        vo = view_outputs(net, out, name, target)
        assert vo.n_views == len(keys)
        assert vo.fused_logits is None and vo.loo_logits is None
        for i, key in enumerate(keys):
            assert vo.rep_logits[i] is out[key].rep_logits
    vo = view_outputs(net, out, "mv2d", target, frozenset({"fused_logits", "loo_logits"}))
    assert vo.fused_logits.shape == (4, C) and len(vo.loo_logits) == 3
    # MeanFusion: P_Z\i is the head applied to the mean of the other views' z
    head = net.fusion.fuse.head
    reps = vo.rep
    torch.testing.assert_close(vo.fused_logits, head((reps[0] + reps[1] + reps[2]) / 3))
    torch.testing.assert_close(vo.loo_logits[1], head((reps[0] + reps[2]) / 2))
    out2 = net(_images(4), _images(4, 1))
    with pytest.raises(ValueError, match="intermediate"):
        view_outputs(net, out2, "mv2d", target)


def _brute_triplet(x, y, margin):
    n = len(y)
    d = [[float(((x[i] - x[j]) ** 2).sum().sqrt()) for j in range(n)] for i in range(n)]
    losses = []
    for a in range(n):
        pos = [d[a][j] for j in range(n) if j != a and y[j] == y[a]]
        neg = [d[a][j] for j in range(n) if y[j] != y[a]]
        if pos and neg:
            gap = max(pos) - min(neg)
            losses.append(
                max(0.0, gap + margin)
                if margin is not None
                else float(torch.nn.functional.softplus(torch.tensor(gap)))
            )
    return sum(losses) / len(losses)


def test_batch_hard_triplet_matches_a_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 6, generator=g)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4])  # identity 4 has no positive
    for margin in (0.3, 5.0, None):
        got = batch_hard_triplet(x, y, margin)
        assert got.item() == pytest.approx(_brute_triplet(x, y, margin), rel=1e-5)
    assert batch_hard_triplet(x, torch.zeros(12, dtype=torch.long)).item() == 0.0
    off = ~torch.eye(12, dtype=torch.bool)  # the diagonal is ~1e-3 from float cancellation
    torch.testing.assert_close(pairwise_euclidean(x)[off], torch.cdist(x, x)[off])
    # hardest positive far, negative near -> loss > 0 with a gradient for both
    x.requires_grad_(True)
    batch_hard_triplet(x, y, 5.0).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bottleneck_is_the_papers_mlp():
    from mv2d_bench.models.reid import MlpGaussianBottleneck

    b = MlpGaussianBottleneck(2048, 256, (1024, 512))
    linears = [m for m in b.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2048, 1024),
        (1024, 512),
        (512, 512),  # 2 x 256: mean and pre-softplus std
    ]
    b.eval()
    z, mean, std = b(torch.randn(3, 2048))
    assert torch.equal(z, mean) and z.shape == (3, 256)
    raw = b.gaussian.net(b.pre(torch.zeros(1, 2048)))[:, 256:]
    _, _, std0 = b(torch.zeros(1, 2048))
    torch.testing.assert_close(std0, torch.nn.functional.softplus(raw) + b.gaussian.min_std)


def test_no_bottleneck_ablation_uses_v_as_z():
    net = _net(bottleneck=False).train()
    out = net(_images(4), _images(4, 1))
    for o in out.values():
        assert o.rep is o.obs and o.rep_mean is o.obs and o.rep_logits is o.obs_logits
        assert float(o.rep_std.abs().sum()) == 0.0
    assert net.z_dim == 512 and net.embed_dim == 1024
    assert not any(isinstance(m, torch.nn.Linear) and m.in_features == Z for m in net.modules())
