"""``mv2d-bench benchmarks list`` and ``mv2d-bench data verify|inspect|prepare``."""

from __future__ import annotations

import json
import shutil
from importlib import metadata

import numpy as np
import pytest
import scipy.io as sio

from mv2d_bench.cli import main


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("MV2D_DATA", raising=False)
    monkeypatch.delenv("MV2D_CACHE", raising=False)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cell(items, shape):
    out = np.empty(shape, dtype=object)
    for i, item in enumerate(items):
        out.flat[i] = item
    return out


def test_benchmarks_list_json_covers_every_entry_point(capsys):
    code, out, _ = run(capsys, "benchmarks", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    declared = {ep.name for ep in metadata.entry_points(group="mv2d_bench.benchmarks")}
    assert declared <= set(rows)
    hand = rows["hand"]
    assert hand["status"] == "ok" and hand["family"] == "mvc"
    assert hand["view_dims"] == [240, 76, 216, 47, 64, 6] and hand["num_classes"] == 10
    assert hand["protocols"] == ["mvc/accuracy@1", "mvc/accuracy@2"] and hand["samples"] == 2000
    assert hand["split_seeds"] == [300, 301, 302, 303, 304]  # MvNNcor's Hand seed first
    assert rows["caltech101"]["num_classes"] == 102 and rows["caltech101"]["samples"] == 9144
    assert rows["nuswideobj"]["view_dims"] == [64, 225, 144, 73, 128]
    assert rows["awa"]["view_dims"] == [2688, 2000, 252, 2000, 2000, 2000]
    assert rows["reuters"]["view_dims"] == [21531, 24892, 34251, 15506, 11547]
    code, out, _ = run(capsys, "benchmarks", "list")
    line = next(x for x in out.splitlines() if x.startswith("scene15 "))
    assert "ok" in line and "gist:20 lbp:59 phog:40" in line and "15 classes" in line


def test_benchmarks_show_card(capsys):
    code, out, _ = run(capsys, "benchmarks", "show", "landuse21", "--json")
    info = json.loads(out)
    assert code == 0 and info["card"]["checksums"]["LandUse-21.mat"].startswith("6441fc42")
    assert "orientation" in info["options"]
    code, _, err = run(capsys, "benchmarks", "show", "landuse2")
    assert code == 2 and "did you mean 'landuse21'" in err


def test_verify_real_file_passes(shared_data, capsys):
    root = shared_data / "multiview"
    code, out, _ = run(capsys, "data", "verify", "landuse21", "--root", str(root), "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert report["summary"]["class_counts"] == [100] * 21
    assert report["summary"]["view_dims"] == [20, 59, 40]
    code, out, _ = run(capsys, "data", "verify", "hand", "--root", str(root))
    assert code == 0 and "hand: verified" in out and "sha256 handwritten.mat" in out


def test_verify_fails_on_changed_file(shared_data, tmp_path, capsys):
    copy = tmp_path / "Reuters-1200.mat"
    real = sio.loadmat(shared_data / "multiview" / "Reuters-1200.mat")
    sio.savemat(copy, {"X": real["X"], "y": real["y"]})  # same content, different bytes
    code, out, _ = run(capsys, "data", "verify", "reuters1200", "--root", str(tmp_path), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    failed = [c["name"] for c in report["checks"] if not c["ok"]]
    assert failed == ["sha256 Reuters-1200.mat"]
    code, out, _ = run(capsys, "data", "verify", "reuters1200", "--root", str(copy))
    assert code == 1 and "FAIL  sha256 Reuters-1200.mat" in out and "FAILED (1 of 6" in out


def test_verify_structure_failure_and_missing_root(tmp_path, capsys):
    bad = tmp_path / "Scene-15.mat"
    bad.write_bytes(b"not a mat file at all" * 10)
    code, out, _ = run(capsys, "data", "verify", "scene15", "--root", str(bad), "--json")
    report = json.loads(out)
    assert code == 1 and report["checks"][0]["name"] == "structure"
    assert "not a MATLAB v5/v7.3 .mat file" in report["checks"][0]["detail"]
    code, _, err = run(capsys, "data", "verify", "scene15", "--root", str(tmp_path / "absent"))
    assert code == 2 and "absent (from --root) does not exist" in err
    assert "github.com/XLearning-SCU/2021-CVPR-Completer" in err
    code, out, _ = run(capsys, "data", "verify", "caltech20", "--json")
    assert code == 2 and "no data root was given" in json.loads(out)["error"]


def test_verify_with_option_subset(shared_data, capsys):
    root = shared_data / "uci-mfeat"
    code, out, _ = run(capsys, "data", "verify", "hand", "--root", str(root))
    assert code == 1 and "FAIL  structure" in out and "missing mfeat-zer, mfeat-kar" in out
    code, out, _ = run(
        capsys, "data", "verify", "hand", "--root", str(root), "-o", "views=pix,fou,fac,mor"
    )
    assert code == 0, out
    assert "pix 240, fou 76, fac 216, mor 6" in out
    assert out.count("ok    sha256 mfeat-") == 4


def test_verify_unknown_benchmark_and_bad_option(capsys):
    code, _, err = run(capsys, "data", "verify", "hnad")
    assert code == 2 and "did you mean 'hand'" in err
    code, _, err = run(capsys, "data", "verify", "hand", "-o", "colour=red")
    assert code == 2 and "unknown option(s) ['colour']" in err


def test_inspect_reports_layout(tmp_path, capsys):
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(12, 5)).T, rng.normal(size=(12, 3))]
    path = tmp_path / "any.mat"
    sio.savemat(path, {"data": cell(views, (2, 1)), "gt": np.arange(12) % 4 + 5, "feanames": "ab"})
    code, out, _ = run(capsys, "data", "inspect", str(path), "--json")
    report = json.loads(out)
    assert code == 0 and report["format"] == "mat-v5" and report["ok"]
    assert (report["samples"], report["classes"]) == (12, 4)
    assert report["class_counts"] == [3, 3, 3, 3] and report["label_values"] == [5, 6, 7, 8]
    assert report["views_key"] == "data" and report["cell_shape"] == [2, 1]
    assert [v["dim"] for v in report["views"]] == [5, 3]
    assert [v["stored"] for v in report["views"]] == ["features x samples", "samples x features"]
    assert report["variables"]["data"]["kind"] == "cell"
    code, out, _ = run(capsys, "data", "inspect", str(path))
    assert code == 0 and "data{1}" in out and "stored features x samples" in out


def test_inspect_unreadable_as_multiview(tmp_path, capsys):
    path = tmp_path / "plain.mat"
    sio.savemat(path, {"A": np.ones((3, 3))})
    code, out, _ = run(capsys, "data", "inspect", str(path), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"] and report["variables"]["A"]["shape"] == [3, 3]
    assert "no cell of views found" in report["error"]
    code, _, err = run(capsys, "data", "inspect", str(tmp_path / "nothing.mat"))
    assert code == 2 and "nothing.mat: not a file" in err


def test_inspect_real_file(shared_data, capsys):
    code, out, _ = run(
        capsys, "data", "inspect", str(shared_data / "multiview" / "handwritten.mat"), "--json"
    )
    report = json.loads(out)
    assert code == 0 and [v["dim"] for v in report["views"]] == [240, 76, 216, 47, 64, 6]
    assert report["sha256"].startswith("58843f19") and report["class_counts"] == [200] * 10


def test_prepare(shared_data, tmp_path, capsys):
    code, out, _ = run(
        capsys, "data", "prepare", "scene15", "--root", str(shared_data / "multiview")
    )
    assert code == 0 and "nothing to prepare" in out
    features = tmp_path / "Features"
    for v, d in {
        "cq": 2688,
        "lss": 2000,
        "phog": 252,
        "rgsift": 2000,
        "sift": 2000,
        "surf": 2000,
    }.items():
        folder = features / f"{v}-hist" / "zebra"
        folder.mkdir(parents=True)
        (folder / "zebra_10001.txt").write_text(" ".join(["1"] * d))
    cache = tmp_path / "cache"
    code, out, _ = run(
        capsys, "data", "prepare", "awa", "--root", str(tmp_path), "-o", f"cache_dir={cache}"
    )
    assert code == 0
    made = list(cache.iterdir())
    assert len(made) == 1 and out.splitlines()[-1] == str(made[0])
    shutil.rmtree(cache)
