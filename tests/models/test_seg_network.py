"""The segmentation network: pixel gathering, the point-voxel maps of both 3D branches (91,767
voxels of 0.05 m in the real KITTI scan), LI-fusion only through camera-seen points, presence,
the bottleneck switches and leave-one-out logits only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mv2d_bench.models.seg.network import SegInputs, SegNet
from mv2d_bench.models.seg.range_unet import RangeUNet

TINY = dict(encoder=(4, 4, 8, 8), decoder=(8, 8, 4, 4), stem=4, z_dim=4, fusion_width=4)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def kitti_points(shared_data, stride=1) -> torch.Tensor:
    path = shared_data / "semantickitti/sequences/00/velodyne/000000.bin"
    return torch.from_numpy(np.fromfile(path, np.float32).reshape(-1, 4)[::stride].copy())


def batch_inputs(points, seen_fraction=0.4, seed=0, images=True):
    g = torch.Generator().manual_seed(seed)
    n = len(points)
    seen = torch.rand(n, generator=g) < seen_fraction
    return SegInputs(
        points=points,
        batch=torch.zeros(n, dtype=torch.long),
        n_scans=1,
        images=torch.randn(1, 3, 32, 96, generator=g) if images else None,
        point_image=torch.where(seen, 0, -1),
        point_grid=torch.rand(n, 2, generator=g) * 2 - 1,
    )


def test_gather_reads_pixel_centres_exactly():
    tv = pytest.importorskip("torchvision", reason="the 2D branch needs torchvision")  # noqa: F841
    from mv2d_bench.models.seg.image_branch import gather

    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 5, 7, 11, generator=g, dtype=torch.float64)
    image = torch.tensor([0, 2, 2, 1, 0])
    rows, cols = torch.tensor([0, 6, 3, 2, 5]), torch.tensor([0, 10, 4, 7, 9])
    grid = torch.stack([cols.double() / 10 * 2 - 1, rows.double() / 6 * 2 - 1], 1)
    got = gather(maps, image, grid)
    torch.testing.assert_close(got, maps[image, :, rows, cols], rtol=0, atol=1e-12)


def test_sparse_voxels_of_the_real_kitti_scan(shared_data):
    pytest.importorskip("spconv.pytorch", reason="spconv (the seg extra) is not installed")
    from mv2d_bench.models.seg.sparse_unet import SparseUNet

    points = kitti_points(shared_data)
    net = SparseUNet(0.05, **{k: TINY[k] for k in ("encoder", "decoder", "stem")})
    x = net.encode(points, torch.zeros(len(points), dtype=torch.long), None, 1)
    assert x.features.shape == (91767, 4)
    base = torch.floor(points[:, :3] / 0.05).long()  # float32, as the points are stored
    base -= base.min(0).values
    rows = net.point_rows(0)
    assert torch.equal(x.indices[rows, 1:].long(), base)  # every point's own voxel
    # voxel input = the mean of its points (x, y, z, intensity)
    sums = torch.zeros(91767, 4, dtype=torch.float64).index_add_(0, rows, points.double())
    counts = torch.bincount(rows, minlength=91767).double()[:, None]
    torch.testing.assert_close(x.features.double(), sums / counts, rtol=0, atol=1e-5)


def test_sparse_levels_map_points_to_their_coarse_voxels(shared_data):
    pytest.importorskip("spconv.pytorch", reason="spconv (the seg extra) is not installed")
    from mv2d_bench.models.seg.sparse_unet import SparseUNet

    points = kitti_points(shared_data, stride=50)
    batch = torch.cat([torch.zeros(len(points) // 2), torch.ones(len(points) - len(points) // 2)])
    net = SparseUNet(0.05, **{k: TINY[k] for k in ("encoder", "decoder", "stem")})
    grids = {}
    original = net.run_encoder

    def spy(stage, x):
        out = original(stage, x)
        grids[stage] = out
        return out

    net.run_encoder = spy
    out = net(points, batch.long(), None, 2)
    assert out.shape == (len(points), 4)
    base = torch.floor(points[:, :3] / 0.05).long()
    base -= base.min(0).values
    for s in range(1, 5):
        idx = grids[s].indices[net.point_rows(s)].long()
        assert torch.equal(idx[:, 0], batch.long())
        assert torch.equal(idx[:, 1:], base >> s)


def test_range_rows_come_from_the_ring_or_the_pitch(shared_data):
    points = kitti_points(shared_data, stride=10)
    net = RangeUNet(64, 2048, **{k: TINY[k] for k in ("encoder", "decoder", "stem")})
    row, col = net.cells(points, None)
    assert row.min() >= 0 and row.max() < 64 and col.min() >= 0 and col.max() < 2048
    pitch = torch.rad2deg(torch.asin(points[:, 2] / points[:, :3].norm(dim=1)))
    inside = (pitch > -24.5) & (pitch < 2.5)
    assert torch.all(torch.diff(row[inside][torch.argsort(pitch[inside])]) <= 0)  # up = row 0
    ring = torch.randint(0, 32, (len(points),))
    net32 = RangeUNet(32, 1024, **{k: TINY[k] for k in ("encoder", "decoder", "stem")})
    assert torch.equal(net32.cells(points, ring)[0], ring)
    with pytest.raises(ValueError, match="ring index outside 0..31"):
        net32.cells(points, ring + 1)
    with pytest.raises(ValueError, match="multiple of 16"):
        RangeUNet(64, 1000)


def test_add_at_points_changes_only_the_cells_of_masked_points(shared_data):
    points = kitti_points(shared_data, stride=40)
    net = RangeUNet(16, 256, **{k: TINY[k] for k in ("encoder", "decoder", "stem")})
    x = net.encode(points, torch.zeros(len(points), dtype=torch.long), None, 1)
    mask = torch.zeros(len(points), dtype=torch.bool)
    mask[::7] = True
    delta = torch.ones(int(mask.sum()), x.shape[1])
    y = net.add_at_points(x, 0, mask, delta)
    changed = (net.rows(y) != net.rows(x)).any(1)
    cells = torch.zeros_like(changed)
    cells[net.point_rows(0)[mask]] = True
    assert torch.equal(changed, cells)


@pytest.mark.parametrize("backbone", ["range", "spconv"])
def test_li_fusion_reads_images_only_through_seen_points(shared_data, backbone):
    pytest.importorskip("torchvision", reason="the 2D branch needs torchvision")
    if backbone == "spconv":
        pytest.importorskip("spconv.pytorch", reason="spconv is not installed")
    points = kitti_points(shared_data, stride=100)
    torch.manual_seed(0)
    net = SegNet(19, backbone_3d=backbone, range_height=16, range_width=256, image_width=4, **TINY)
    net.eval()
    unseen = batch_inputs(points, seen_fraction=0.0)
    with torch.no_grad():
        v_fused = net(unseen).obs[0]
        v_plain = net.backbone(points, unseen.batch, None, 1, fuse=None)
        assert torch.equal(v_fused, v_plain)  # no camera point: LI-fusion adds nothing
        seen = batch_inputs(points, seen_fraction=0.5)
        assert not torch.allclose(net(seen).obs[0], v_plain)


def test_views_presence_and_leave_one_out(shared_data):
    pytest.importorskip("torchvision", reason="the 2D branch needs torchvision")
    points = kitti_points(shared_data, stride=100)
    torch.manual_seed(0)
    net = SegNet(19, backbone_3d="range", range_height=16, range_width=256, image_width=4, **TINY)
    inputs = batch_inputs(points)
    out = net(inputs)
    seen = inputs.point_image >= 0
    assert out.n_views == 2 and out.loo_logits is None
    assert torch.equal(out.present, torch.stack([torch.ones_like(seen), seen], 1))
    assert torch.all(out.obs[1][~seen] == 0) and torch.all(out.obs_logits[1][~seen] == 0)
    assert out.rep_mean is not None and out.rep_logits[0].shape == (len(points), 19)
    out = net(inputs, frozenset({"loo_logits"}))
    # an unseen point has only the LiDAR view: P_Z equals P_Z without the camera
    torch.testing.assert_close(out.fused_logits[~seen], out.loo_logits[1][~seen])
    assert not torch.allclose(out.fused_logits[seen], out.loo_logits[1][seen])


def test_bottleneck_switches(shared_data):
    pytest.importorskip("torchvision", reason="the 2D branch needs torchvision")
    points = kitti_points(shared_data, stride=100)
    kw = dict(backbone_3d="range", range_height=16, range_width=256, image_width=4, **TINY)
    none = SegNet(19, bottleneck="none", **kw)(batch_inputs(points))
    assert none.rep[0] is none.obs[0] and none.rep_logits[1] is none.obs_logits[1]
    assert none.rep_mean is None
    lidar = SegNet(19, bottleneck="lidar", **kw)(batch_inputs(points))
    assert lidar.rep[1] is lidar.obs[1] and lidar.rep[0].shape[1] == 4
    assert lidar.rep_mean is None  # VIB needs a Gaussian on every view
    det = SegNet(19, stochastic=False, **kw)
    det.train()
    out = det(batch_inputs(points))
    assert all(torch.equal(z, m) for z, m in zip(out.rep, out.rep_mean, strict=True))
    with pytest.raises(ValueError, match="model.bottleneck"):
        SegNet(19, bottleneck="half", **kw)


def test_lidar_only_network_needs_no_torchvision(shared_data):
    points = kitti_points(shared_data, stride=100)
    net = SegNet(19, backbone_3d="range", image_branch=False, range_height=16, range_width=256,
                 **TINY)  # fmt: skip
    out = net(batch_inputs(points, images=False), frozenset({"loo_logits"}))
    assert out.n_views == 1 and out.present is None and out.loo_logits is None
    assert net.prediction_logits(out).shape == (len(points), 19)
