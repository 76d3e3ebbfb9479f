"""The structural check of MATLAB v5 files run before scipy: it passes every real file scipy
reads (the MATLAB/Octave-written files in scipy's own test data, the shared real data sets) and
names the damage that crashed scipy's reader."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy
import scipy.io as sio

from mv2d_bench.loaders.base import DataError
from mv2d_bench.loaders.matv5_check import check_v5_structure

SCIPY_DATA = Path(os.path.dirname(scipy.__file__)) / "io" / "matlab" / "tests" / "data"


def _is_v5(path: Path) -> bool:
    head = path.read_bytes()[:128]
    if len(head) < 128 or head[126:128] not in (b"IM", b"MI"):
        return False
    return (head[125] if head[126:128] == b"IM" else head[124]) == 1


def _scipy_reads(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sio.loadmat(path)
        except Exception:  # noqa: BLE001 - scipy's own broken test files raise many types
            return False
    return True


@pytest.mark.skipif(not SCIPY_DATA.is_dir(), reason="scipy's test data is not installed")
def test_every_v5_file_scipy_reads_passes():
    files = [p for p in sorted(SCIPY_DATA.glob("*.mat")) if _is_v5(p) and _scipy_reads(p)]
    assert len(files) >= 50  # MATLAB 6/7 and Octave files: cells, structs, objects, sparse, ...
    for path in files:
        check_v5_structure(path)


def test_the_shared_real_data_passes(shared_data):
    files = sorted((shared_data / "multiview").glob("*.mat"))
    assert files, "no .mat files in the shared data"
    for path in files:
        check_v5_structure(path)


@pytest.mark.parametrize("compress", [False, True])
def test_what_scipy_writes_passes(tmp_path, compress):
    cell = np.empty((1, 3), dtype=object)
    cell[0, 0], cell[0, 1], cell[0, 2] = np.eye(3), np.arange(6.0).reshape(2, 3), np.zeros((0, 0))
    values = {
        "X": cell, "Y": np.arange(3), "s": {"a": "text", "b": {"c": np.int16(4)}},
        "z": np.array([1 + 2j, 3]), "L": np.array([True, False]), "sp": scipy.sparse.eye(4),
        "names": np.array(["ab", "cd"]),
    }  # fmt: skip
    sio.savemat(tmp_path / "a.mat", values, do_compression=compress)
    check_v5_structure(tmp_path / "a.mat")


def test_damage_is_named_with_its_byte(tmp_path):
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = np.ones((50, 4))
    sio.savemat(tmp_path / "a.mat", {"X": cell, "Y": np.arange(50)}, do_compression=False)
    raw = bytearray((tmp_path / "a.mat").read_bytes())
    raw[224] = 25  # the values' data type inside the cell (miDOUBLE, 9): no such type
    (tmp_path / "b.mat").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"b\.mat: cannot read MATLAB v5 data \(byte 224: data "
                       r"type 25 is not a MATLAB data type\)"):  # fmt: skip
        check_v5_structure(tmp_path / "b.mat")
    raw = bytearray((tmp_path / "a.mat").read_bytes())
    raw[144] = 5  # the cell's class byte made "sparse": scipy 1.17 segfaults on it
    (tmp_path / "c.mat").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"a sparse array holds a nested array"):
        check_v5_structure(tmp_path / "c.mat")
    (tmp_path / "d.mat").write_bytes((tmp_path / "a.mat").read_bytes()[:1000])
    with pytest.raises(DataError, match=r"runs past the end of its container"):
        check_v5_structure(tmp_path / "d.mat")
