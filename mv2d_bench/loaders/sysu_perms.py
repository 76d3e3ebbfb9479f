"""The official SYSU-MM01 trial permutations, ``rand_perm_cam.mat``: where to find it, reading it,
and its sha256 (what a run record names).

The dataset authors' evaluation (wuancong/SYSU-MM01, ``evaluation/data_split/rand_perm_cam.mat``)
fixes its ten trial galleries with this file: ``rand_perm_cam{cam}{id}`` is a ``10 x n`` matrix
(one row per trial) of 1-based positions of that identity's ``n`` images in that camera, in
file-name order; trial ``t`` takes the first one (single-shot) or ten (multi-shot) entries of
row ``t``. :func:`read_rand_perm_cam` returns them 0-based as ``{cam: {id: (10, n) int64}}``.

Where the file is looked for (:func:`locate`), in this order:

1. an explicit path (``mv2d-bench score --rand-perm-cam FILE``, ``reid.rand_perm_cam`` in a run
   configuration);
2. the SYSU-MM01 data root: ``exp/rand_perm_cam.mat``, ``data_split/rand_perm_cam.mat``,
   ``rand_perm_cam.mat`` (:data:`ROOT_LOCATIONS`);
3. the environment variable ``MV2D_SYSU_RAND_PERM`` (:data:`ENV_VAR`), a path to the file.

A path that is given (1 or 3) but does not exist is an error; so is finding nothing when the
protocol needs the official galleries. Both errors name every place looked at.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mv2d_bench.loaders.base import DataError

ENV_VAR = "MV2D_SYSU_RAND_PERM"
ROOT_LOCATIONS = ("exp/rand_perm_cam.mat", "data_split/rand_perm_cam.mat", "rand_perm_cam.mat")
OFFICIAL_URL = "https://github.com/wuancong/SYSU-MM01 (evaluation/data_split/rand_perm_cam.mat)"
TRIALS = 10


class RandPermNotFound(DataError):
    """No ``rand_perm_cam.mat`` where it was looked for (the message lists every place)."""


@dataclass(frozen=True)
class RandPermCam:
    """The official permutations as read from one file."""

    path: str
    sha256: str
    perms: dict[int, dict[int, np.ndarray]]
    """``{cam: {id: (trials, n) int64}}``, 0-based image positions (file-name order)."""


def locate(
    file: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    *,
    required: bool = True,
) -> Path | None:
    """The ``rand_perm_cam.mat`` to use (module docstring for the order), or None when nothing
    is found and ``required`` is false."""
    looked: list[str] = []
    if file:
        p = Path(file)
        if p.is_file():
            return p
        raise RandPermNotFound(
            f"{p}: rand_perm_cam file not found (given as --rand-perm-cam / "
            "reid.rand_perm_cam); expected the official rand_perm_cam.mat from " + OFFICIAL_URL
        )
    looked.append("--rand-perm-cam / reid.rand_perm_cam (not given)")
    if root:
        for rel in ROOT_LOCATIONS:
            p = Path(root) / rel
            if p.is_file():
                return p
            looked.append(str(p))
    else:
        looked.append("the SYSU-MM01 data root (not given)")
    env = os.environ.get(ENV_VAR, "")
    if env:
        p = Path(env)
        if p.is_file():
            return p
        raise RandPermNotFound(
            f"{p}: rand_perm_cam file not found (named by ${ENV_VAR}); expected the official "
            "rand_perm_cam.mat from " + OFFICIAL_URL
        )
    looked.append(f"${ENV_VAR} (unset)")
    if not required:
        return None
    raise RandPermNotFound(
        "rand_perm_cam.mat: not found; the official SYSU-MM01 galleries (protocol ids @2) need "
        f"it. Looked at: {'; '.join(looked)}. Get it from {OFFICIAL_URL} and pass "
        f"--rand-perm-cam FILE, put it in the data root or set ${ENV_VAR}; or score the seeded "
        "draw with sysu-mm01/all-search/single-shot-seeded@1"
    )


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(path: str | os.PathLike) -> RandPermCam:
    """Read and hash one ``rand_perm_cam.mat``."""
    path = Path(path)
    perms = read_rand_perm_cam(path)
    return RandPermCam(path=str(path), sha256=sha256_file(path), perms=perms)


def read_rand_perm_cam(path: str | os.PathLike) -> dict[int, dict[int, np.ndarray]]:
    """Read the official ``rand_perm_cam.mat`` (MATLAB v5): ``rand_perm_cam`` is a 6-cell, cell
    ``{cam}`` holds one cell per identity number (1-based position = identity), each a
    ``trials x n`` matrix of 1-based image indices. Returns 0-based ``{cam: {id: array}}``
    (identities without images in a camera are left out)."""
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, squeeze_me=False)
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
        raise DataError(
            f"{path}: MATLAB v7.3 file; re-save rand_perm_cam as v7 (save(..., '-v7')), the "
            "format of the authors' release"
        ) from exc
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable MATLAB file ({exc})") from exc
    if "rand_perm_cam" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: field rand_perm_cam: missing (found: {found})")
    cams = np.asarray(mat["rand_perm_cam"], dtype=object).reshape(-1)
    if cams.shape[0] != 6:
        raise DataError(f"{path}: field rand_perm_cam has {cams.shape[0]} cells, expected 6 cams")
    out: dict[int, dict[int, np.ndarray]] = {}
    for c, cell in enumerate(cams, start=1):
        people = np.asarray(cell, dtype=object).reshape(-1)
        out[c] = {}
        for p, perm in enumerate(people, start=1):
            arr = np.asarray(perm)
            if arr.size == 0:
                continue
            if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
                raise DataError(
                    f"{path}: field rand_perm_cam{{{c}}}{{{p}}} has shape {arr.shape}, expected "
                    "a numeric trials x images matrix"
                )
            arr = arr.astype(np.int64) - 1
            n = arr.shape[1]
            if not all(np.array_equal(np.sort(row), np.arange(n)) for row in arr):
                raise DataError(
                    f"{path}: field rand_perm_cam{{{c}}}{{{p}}} rows are not permutations of 1..{n}"
                )
            out[c][p] = arr
    return out
