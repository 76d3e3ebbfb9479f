"""Projecting LiDAR points into camera images, and which camera a point is assigned to.

A camera is a 3 x 4 matrix ``M`` (float64) with ``uvw = M @ (x, y, z, 1)``: pixel ``(u, v) =
(uvw[0] / w, uvw[1] / w)`` and depth ``w``, the camera-frame z (the intrinsics' last row is
(0, 0, 1)). Each benchmark's visibility rule is that of its official tool:

* ``"nuscenes"`` (the devkit's ``map_pointcloud_to_image``): depth > 1 m and
  1 < u < W - 1, 1 < v < H - 1;
* ``"semantickitti"``: camera z > 0 and 0 <= u < W, 0 <= v < H.

Pixel coordinates have their origin at the centre of the top-left pixel (integer = pixel
centre), so ``u / (W - 1) * 2 - 1`` is the ``grid_sample(align_corners=True)`` coordinate.
"""

from __future__ import annotations

import numpy as np

RULES = ("nuscenes", "semantickitti")


def project(
    xyz: np.ndarray, matrix: np.ndarray, width: int, height: int, rule: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(visible (N,) bool, uv (N, 2) float32)`` of points ``xyz`` (N, 3) in one camera.

    ``uv`` is computed for every point (meaningless where ``visible`` is False).
    """
    if rule not in RULES:
        raise ValueError(f"unknown visibility rule {rule!r}; expected one of {RULES}")
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 4):
        raise ValueError(f"a camera matrix is 3 x 4; got {m.shape}")
    pts = np.asarray(xyz, dtype=np.float64)
    uvw = pts @ m[:, :3].T + m[:, 3]
    w = uvw[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = uvw[:, 0] / w
        v = uvw[:, 1] / w
    if rule == "nuscenes":
        visible = (w > 1.0) & (u > 1) & (u < width - 1) & (v > 1) & (v < height - 1)
    else:
        visible = (w > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    uv = np.stack([u, v], axis=1)
    uv[~visible] = 0.0
    return visible, uv.astype(np.float32)


MERGE_RULES = ("last", "first")


def assign_camera(visible: np.ndarray, rule: str = "last") -> np.ndarray:
    """The camera each point is assigned to: (N,) int64 index into the cameras, -1 for none.

    ``visible`` is (cameras, N). ``"last"``: the last camera (in the benchmark's camera order)
    that sees the point, as the MV2D authors' code does (each camera overwrites the previous);
    ``"first"``: the first one.
    """
    if rule not in MERGE_RULES:
        raise ValueError(f"camera merge rule must be one of {MERGE_RULES}; got {rule!r}")
    visible = np.asarray(visible, dtype=bool)
    n_cams = visible.shape[0]
    seen = visible.any(axis=0)
    if rule == "first":
        cam = visible.argmax(axis=0)
    else:
        cam = n_cams - 1 - visible[::-1].argmax(axis=0)
    return np.where(seen, cam, -1).astype(np.int64)
