"""Hugging Face datasets both ways: ``data export`` (save_to_disk and parquet) and the ``hf``
benchmark. The round trip is bit-exact (float32 views, labels, the very split and its sha256,
the content sha256), a run through ``hf`` equals the run on the exported benchmark, datasets
made elsewhere are read with their own splits, and an interrupted export leaves nothing.
HF_DATASETS_OFFLINE=1 throughout (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import scipy.sparse as sp

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")

from mv2d_bench.cli import main  # noqa: E402
from mv2d_bench.config import load_config  # noqa: E402
from mv2d_bench.harness.runner import make_task  # noqa: E402
from mv2d_bench.harness.trainer import Trainer  # noqa: E402
from mv2d_bench.leaderboards.records import check_record  # noqa: E402
from mv2d_bench.loaders import create  # noqa: E402
from mv2d_bench.loaders import hf_export as E  # noqa: E402
from mv2d_bench.loaders.base import DataError  # noqa: E402
from mv2d_bench.loaders.mvc import content_sha256  # noqa: E402


def cell(items):
    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


@pytest.fixture(scope="module")
def matfile(tmp_path_factory) -> Path:
    """60 samples, 3 classes with labels 4/7/9, three views (one sparse, one stored transposed),
    values that are not exact in float32 (so float64 -> float32 rounding is exercised)."""
    rng = np.random.default_rng(0)
    labels = np.repeat([4, 7, 9], 20)
    dense = rng.normal(size=(60, 5)) / 3.0
    wide = rng.normal(size=(60, 7)).T  # features x samples
    sparse = sp.random(60, 9, density=0.3, random_state=1, format="csc") * np.pi
    path = tmp_path_factory.mktemp("mat") / "three.mat"
    sio.savemat(path, {"X": cell([dense, wide, sparse]), "Y": labels[:, None]})
    return path


def exported(tmp_path, matfile, fmt, seed=0):
    bench = create("mvmat", root=matfile)
    out = tmp_path / f"out-{fmt}"
    block = E.export(bench, out, fmt, split_seed=seed, progress=False)
    return bench.load(), out, block


@pytest.mark.parametrize("fmt", ["hf", "parquet"])
def test_export_layout_and_bit_exact_rows(tmp_path, matfile, fmt):
    data, out, block = exported(tmp_path, matfile, fmt)
    split = data.make_split(0)
    if fmt == "hf":
        dd = datasets.load_from_disk(str(out))
        assert isinstance(dd, datasets.DatasetDict)
        parts = {name: dd[name] for name in dd}
        info = dd["train"].info
        assert info.citation == "(the file's own)" and info.license == "(the file's own)"
        assert "mv2d-bench export: " in info.description
    else:
        assert sorted(p.name for p in out.iterdir()) == [
            "test.parquet",
            "train.parquet",
            "validation.parquet",
        ]
        parts = {p.stem: datasets.Dataset(pq.read_table(p)) for p in out.iterdir()}
        meta = json.loads(pq.read_schema(out / "train.parquet").metadata[b"mv2d_bench"])
        assert meta == block
    assert sorted(parts) == ["test", "train", "validation"]
    feats = parts["train"].features
    assert list(feats) == ["view1", "view2", "view3", "label", "sample_index"]
    assert feats["view2"] == datasets.Sequence(datasets.Value("float32"), length=7)
    assert isinstance(feats["label"], datasets.ClassLabel) and feats["label"].names == [
        "4",
        "7",
        "9",
    ]
    for name, part in zip(("train", "validation", "test"), ("train", "val", "test"), strict=True):
        table = parts[name].data.table
        index = table.column("sample_index").to_numpy()
        np.testing.assert_array_equal(np.sort(index), getattr(split, part))
        np.testing.assert_array_equal(table.column("label").to_numpy(), data.labels[index])
        for v, x in zip(("view1", "view2", "view3"), data.views, strict=True):
            got = table.column(v).combine_chunks().flatten().to_numpy().reshape(len(index), -1)
            want = (x.toarray() if sp.issparse(x) else x)[index].astype(np.float32)
            assert got.dtype == np.float32 and got.tobytes() == want.tobytes()  # bit for bit
    assert block["split"] == {
        "split_id": "stratified-70-20-10/seed-0",
        "sha256": split.sha256,
        "seed": 0,
        "fractions": [0.7, 0.2, 0.1],
        "labels_sha256": split.labels_sha256,
        "counts": {"train": 42, "validation": 12, "test": 6},
    }
    assert block["data_sha256"] == data.data_sha256  # the .mat file's sha256
    f32 = [(x.toarray() if sp.issparse(x) else x).astype(np.float32) for x in data.views]
    assert block["content_sha256"] == content_sha256(f32, data.labels)


@pytest.mark.parametrize("fmt", ["hf", "parquet"])
def test_hf_benchmark_reads_the_export_back_exactly(tmp_path, matfile, fmt):
    data, out, block = exported(tmp_path, matfile, fmt, seed=2)
    back = create("hf", root=out, dtype="float32").load()
    assert back.view_names == ["view1", "view2", "view3"] and back.num_classes == 3
    for got, x in zip(back.views, data.views, strict=True):
        want = (x.toarray() if sp.issparse(x) else x).astype(np.float32)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
    np.testing.assert_array_equal(back.labels, data.labels)
    assert back.info["class_names"] == ["4", "7", "9"]
    assert back.data_sha256 == block["content_sha256"]
    original, again = data.make_split(2), back.make_split(7)  # the dataset's own: no seed used
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(again, part), getattr(original, part))
    assert again.sha256 == original.sha256
    assert again.split_id == "predefined-hf/stratified-70-20-10/seed-2"
    report = create("hf", root=out).verify()
    assert report["ok"] and {c["name"] for c in report["checks"]} >= {"content sha256"}


def test_save_to_disk_and_parquet_give_one_data_hash(tmp_path, matfile):
    _, a, _ = exported(tmp_path, matfile, "hf")
    _, b, _ = exported(tmp_path, matfile, "parquet")
    assert create("hf", root=a).load().data_sha256 == create("hf", root=b).load().data_sha256


TINY = [
    "run.threads=1",
    "train.progress=false",
    "train.epochs=2",
    "train.batch_size=16",
    "model.hidden=[16, 8]",
    "model.z_dim=4",
    "model.bottleneck_hidden=8",
    "model.relation_rank=4",
    "model.classifier_hidden=8",
    "benchmark.dtype=float32",
    "run.objective=mv2d",
]


def test_a_run_through_hf_equals_the_run_on_the_exported_benchmark(tmp_path, matfile):
    _, out, _ = exported(tmp_path, matfile, "hf")
    runs = {}
    for name, root in (("mvmat", matfile), ("hf", out)):
        # the dense views: mvmat standardises a sparse view through scipy.sparse (other
        # float32 rounding than the dense copy the export holds)
        dense = 'benchmark.views=["view1", "view2"]'
        cfg = load_config(overrides=[*TINY, f"run.benchmark={name}", f"run.root={root}", dense])
        trainer = Trainer(make_task(cfg), cfg)
        runs[name] = (trainer.fit(), trainer.task.split)
    (a, split_a), (b, split_b) = runs["mvmat"], runs["hf"]
    assert split_a.sha256 == split_b.sha256
    assert a.history == b.history  # every epoch's loss terms and accuracies, bit for bit
    assert a.test_metrics == b.test_metrics and a.best_epoch == b.best_epoch


def test_run_cli_through_hf_writes_a_valid_record(tmp_path, matfile, capsys):
    _, out, block = exported(tmp_path, matfile, "parquet")
    sets = [a for s in TINY for a in ("--set", s) if not s.startswith("run.objective")]
    args = ["run", "--benchmark", "hf", "--root", str(out), "--objective", "vib",
            "--out", str(tmp_path / "runs"), *sets]  # fmt: skip
    assert main(args) == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    record = json.loads(path.read_text())
    assert check_record(record, str(path)) == []
    assert record["benchmark"]["name"] == "hf" and record["protocol"] == "mvc/accuracy@1"
    assert record["benchmark"]["split_id"] == "predefined-hf/stratified-70-20-10/seed-0"
    assert record["benchmark"]["split_sha256"] == block["split"]["sha256"]
    assert record["benchmark"]["data_sha256"] == block["content_sha256"]


# -- datasets made elsewhere ---------------------------------------------------------------------
def foreign(n_train=30, n_test=12, seed=0):
    rng = np.random.default_rng(seed)

    def part(n, offset):
        return {
            "rgb": rng.normal(size=(n, 4)).tolist(),  # float64 lists
            "depth": rng.normal(size=(n, 3)).astype(np.float32).tolist(),
            "n_points": rng.integers(0, 9, size=n).tolist(),  # an int column: not a view
            "label": [["cat", "dog", "emu"][(i + offset) % 3] for i in range(n)],  # strings
        }

    feats = datasets.Features(
        {
            "rgb": datasets.Sequence(datasets.Value("float64")),
            "depth": datasets.Sequence(datasets.Value("float32")),
            "n_points": datasets.Value("int64"),
            "label": datasets.Value("string"),
        }
    )
    train = datasets.Dataset.from_dict(part(n_train, 0), features=feats)
    test = datasets.Dataset.from_dict(part(n_test, 1), features=feats)
    return train, test


def test_foreign_dataset_uses_its_own_train_test_split(tmp_path):
    train, test = foreign()
    root = tmp_path / "foreign"
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(root))
    data = create("hf", root=root).load()
    assert data.view_names == ["rgb", "depth"] and data.view_dims == [4, 3]
    assert data.info["class_names"] == ["cat", "dog", "emu"] and data.n_samples == 42
    np.testing.assert_array_equal(data.views[0][:30], np.asarray(train["rgb"]))
    np.testing.assert_array_equal(data.views[1][30:], np.asarray(test["depth"], dtype=np.float32))
    split = data.make_split(1)
    assert split.split_id == "predefined-hf/train-test/val-from-train-70-20/seed-1"
    np.testing.assert_array_equal(split.test, np.arange(30, 42))  # the test split as given
    assert set(split.train) | set(split.val) == set(range(30))
    assert split.per_class == {str(c): [7, 3, 4] for c in range(3)}  # floor(10 * 7/9) = 7 stay
    pooled = create("hf", root=root, splits="per-class", views="depth").load()
    assert pooled.view_names == ["depth"] and pooled.make_split(0).split_id.startswith("strat")


def test_hub_parquet_shards_and_a_single_split(tmp_path):
    train, test = foreign(seed=1)
    data_dir = tmp_path / "hub" / "data"
    data_dir.mkdir(parents=True)
    train.select(range(20)).to_parquet(str(data_dir / "train-00000-of-00002.parquet"))
    train.select(range(20, 30)).to_parquet(str(data_dir / "train-00001-of-00002.parquet"))
    test.to_parquet(str(data_dir / "test-00000-of-00001.parquet"))
    data = create("hf", root=tmp_path / "hub").load()
    assert data.info["splits"] == {"train": 30, "test": 12}
    np.testing.assert_array_equal(data.views[0][:30], np.asarray(train["rgb"]))
    single = tmp_path / "single"
    train.save_to_disk(str(single))  # one Dataset, no splits: the per-class split
    assert create("hf", root=single).load().make_split(0).split_id == "stratified-70-20-10/seed-0"


def test_bad_datasets_are_refused_with_the_column_named(tmp_path):
    train, test = foreign()
    odd = tmp_path / "odd"
    datasets.DatasetDict({"train": train, "test": test, "extra": test}).save_to_disk(str(odd))
    with pytest.raises(DataError, match=r"splits \['extra', 'test', 'train'\].*splits=per-class"):
        create("hf", root=odd).load()
    assert create("hf", root=odd, splits="per-class").load().n_samples == 54
    ragged = datasets.Dataset.from_dict({"v": [[1.0, 2.0], [3.0]], "label": [0, 1]})
    ragged.save_to_disk(str(tmp_path / "ragged"))
    with pytest.raises(DataError, match=r"column 'v' has rows of lengths \[1, 2\]"):
        create("hf", root=tmp_path / "ragged").load()
    unlabelled = datasets.Dataset.from_dict({"v": [[1.0], [2.0]], "y": [0, 1]})
    unlabelled.save_to_disk(str(tmp_path / "nolabel"))
    with pytest.raises(DataError, match=r"no column 'label'.*benchmark.label=COLUMN"):
        create("hf", root=tmp_path / "nolabel").load()
    assert create("hf", root=tmp_path / "nolabel", label="y").load().num_classes == 2
    with pytest.raises(DataError, match=r"column 'y' is int64; expected a sequence of numbers"):
        create("hf", root=tmp_path / "nolabel", label="v", views="y").load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no dataset found; expected a folder written"):
        create("hf", root=tmp_path / "empty").load()


# -- the command and its guarantees ---------------------------------------------------------------
def test_export_cli_refuses_a_non_empty_output_and_other_families(tmp_path, matfile, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["data", "export", "mvmat", "--root", str(matfile), "--format", "hf", "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"mv2d-bench: error: {out}: -o exists and is not empty; expected a new or empty folder "
        "(remove it or choose another)"
    )
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main(["data", "export", "regdb", "--format", "hf", "-o", str(tmp_path / "r")]) == 2
    assert "only multi-view classification benchmarks" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is fine
    args = ["data", "export", "mvmat", "--root", str(matfile), "--format", "parquet",
            "-o", str(empty), "--json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(empty) and report["split"]["counts"]["test"] == 6
    assert sorted(p.name for p in empty.iterdir())[0] == "test.parquet"


def test_export_shows_a_progress_bar_unless_asked_not_to(tmp_path, matfile, capsys):
    base = ["data", "export", "mvmat", "--root", str(matfile), "--format", "parquet"]
    assert main([*base, "-o", str(tmp_path / "a")]) == 0
    assert "export mvmat" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "b"), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("fmt", ["hf", "parquet"])
def test_an_interrupted_export_leaves_nothing(tmp_path, matfile, monkeypatch, fmt):
    monkeypatch.setattr(E, "CHUNK_BYTES", 4 * 21 * 5)  # five rows a chunk
    calls = {"n": 0}
    real = E._table

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the training split
        return real(*args, **kwargs)

    monkeypatch.setattr(E, "_table", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        E.export(create("mvmat", root=matfile), out, fmt, progress=False)
    assert calls["n"] == 4
    assert list(tmp_path.iterdir()) == []  # no out, no partial or staging folder


def test_a_killed_exports_partial_folder_is_removed_by_the_next(tmp_path, matfile):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".out.partial-{int(dead.stdout)}"
    (stale / "train").mkdir(parents=True)
    alive = tmp_path / f".out.partial-{os.getpid()}-other"  # not ours to judge: kept
    alive.mkdir()
    E.export(create("mvmat", root=matfile), tmp_path / "out", "hf", progress=False)
    assert not stale.exists() and alive.exists()
    assert (tmp_path / "out" / "dataset_dict.json").is_file()


def test_export_under_mvnncors_split_reads_back_as_that_split(tmp_path, matfile, capsys):
    out = tmp_path / "mvnncor"
    args = ["data", "export", "mvmat", "--root", str(matfile), "--format", "hf", "-o", str(out),
            "--split", "mvnncor", "--split-seed", "3", "--no-progress", "--json"]  # fmt: skip
    assert main(args) == 0
    block = json.loads(capsys.readouterr().out)
    original = create("mvmat", root=matfile).load().make_split(3, procedure="mvnncor")
    assert block["split"]["split_id"] == "mvnncor/seed-3"
    assert block["split"]["sha256"] == original.sha256
    again = create("hf", root=out).load().make_split(0)
    assert again.split_id == "predefined-hf/mvnncor/seed-3" and again.sha256 == original.sha256
