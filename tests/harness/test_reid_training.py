"""A CPU training run of two epochs on a tiny SYSU-MM01 tree (ResNet-18, 16 x 8 images) through
``mv2d-bench run`` writes a run record that ``mv2d-bench leaderboard validate`` accepts, with the
protocol's ten trials, and the ReID task's batches, augmentation and loss terms behave as
documented."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision")
PIL = pytest.importorskip("PIL.Image")

from mv2d_bench.cli import main  # noqa: E402
from mv2d_bench.harness.tasks.reid import ReidTask, augment  # noqa: E402
from mv2d_bench.leaderboards.records import check_record, read_record  # noqa: E402

TRAIN, VAL, TEST = (1, 2, 3), (4,), (5, 6, 7)
PER_CAM = 2


def write_sysu_tree(root: Path) -> Path:
    """cam1..cam6/<id:04d>/<nnnn>.jpg and exp/{train,val,test}_id.txt, as published."""
    rng = np.random.default_rng(0)
    for pid in TRAIN + VAL + TEST:
        colour = rng.integers(0, 256, 3)
        for cam in range(1, 7):
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            for j in range(PER_CAM):
                noise = rng.integers(-40, 40, (48, 24, 3))
                pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
                if cam in (3, 6):  # infrared: three equal channels
                    pixels = np.repeat(pixels.mean(-1, keepdims=True), 3, -1).astype(np.uint8)
                PIL.fromarray(pixels).save(folder / f"{j + 1:04d}.jpg")
    (root / "exp").mkdir()
    for name, ids in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        (root / "exp" / f"{name}_id.txt").write_text(",".join(str(i) for i in ids))
    return root


CONFIG = """
[train]
epochs = 2
lr = 2.6e-4
betas = [0.9, 0.999]
lr_milestones = [1]
lr_gamma = 0.1
warmup_epochs = 1
progress = false

[objective]
weight = 2.0

[benchmark]
size = [16, 8]
cache_dir = "{cache}"
progress = false

[model]
backbone = "resnet18"
z_dim = 8
hidden = [32, 16]
extra_objectives = {extras}

[reid]
p = 2
k = 2
epoch = "identities"
pad = 2
eval_batch_size = 16
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from mv2d_bench.leaderboards.testing import write_rand_perm_cam

    root = write_sysu_tree(tmp_path_factory.mktemp("sysu") / "SYSU-MM01")
    write_rand_perm_cam(root)  # the official layout: the @2 protocols find it in exp/
    return root


def test_two_epoch_cpu_run_writes_a_valid_record(tree, tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG.format(cache=tmp_path / "cache", extras="[]"))
    out = tmp_path / "runs"
    rc = main(["run", "--benchmark", "sysu-mm01", "--objective", "mv2d", "--root", str(tree),
               "--config", str(cfg), "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    (path,) = sorted(out.glob("sysu-mm01-*.json"))
    record = read_record(path)
    assert check_record(record) == []  # the JSON Schema of run records
    # ... and `leaderboard validate` (schema plus the protocol rules: trials, metric ranges)
    assert main(["leaderboard", "validate", str(path)]) == 0
    assert main(["leaderboard", "validate", str(out)]) == 0

    assert record["protocol"] == "sysu-mm01/all-search/single-shot@2"
    # the gallery source and the permutation file's sha256 are in the record
    from mv2d_bench.loaders.sysu_perms import sha256_file

    assert record["protocol_gallery"] == {
        "source": "rand_perm_cam",
        "rand_perm_cam_sha256": sha256_file(tree / "exp" / "rand_perm_cam.mat"),
        "seeds": None,
    }
    assert record["config"]["reid"]["third_view"] == "gray-visible"
    assert record["model"]["params"]["third_view"] == "gray-visible"
    assert record["benchmark"]["name"] == "sysu-mm01"
    assert record["benchmark"]["trial"] is None
    assert record["benchmark"]["split_id"] == "sysu-mm01/train+val"
    # ten gallery trials, numbered 1..10; the run's metrics are their mean
    per = record["per_trial"]
    assert [t["trial"] for t in per] == list(range(1, 11))
    for key in ("rank-1", "mAP", "mINP"):
        mean = np.mean([t["metrics"][key] for t in per])
        assert record["metrics"][key] == pytest.approx(mean)
        assert 0.0 <= record["metrics"][key] <= 100.0
    # three test identities: distinct-identity CMC reaches 100 % by rank 3
    assert record["metrics"]["rank-10"] == record["metrics"]["rank-20"] == 100.0
    # train ids 1..4 (train + val) -> 4 classes; the record counts the real network
    from mv2d_bench.models.reid import ReidNet

    net = ReidNet(4, backbone="resnet18", z_dim=8, hidden=(32, 16))
    assert record["model"]["param_count"] == sum(p.numel() for p in net.parameters())
    assert record["model"]["name"] == "reid-three-branch"
    assert record["model"]["params"]["objective_on"] == "mv2d"
    assert record["objective"]["params"]["weight"] == 2.0
    # the log: two epochs of finite loss terms, lr warmed up then decayed x0.1 at epoch 1
    log = out / record["artifacts"]["log"]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert [r["lr"] for r in epochs] == pytest.approx([2.6e-4, 2.6e-5])
    for r in epochs:
        assert set(r["loss"]) == {"ce", "triplet", "obj/sufficiency", "obj/consistency"}
        assert all(np.isfinite(v) for v in r["loss"].values())
    assert record["cost"]["steps_per_second"] > 0


def write_regdb_tree(root: Path, n_ids: int = 6, per_id: int = 2) -> Path:
    """Visible/<n>/*.bmp, Thermal/<n>/*.bmp and idx/{train,test}_{visible,thermal}_<t>.txt
    ('<path> <label>' lines); trial t trains on half the identities (rotated by t)."""
    rng = np.random.default_rng(1)
    files: dict[tuple[int, str], list[str]] = {}
    for pid in range(1, n_ids + 1):
        colour = rng.integers(0, 256, 3)
        for folder, prefix in (("Visible", "v"), ("Thermal", "t")):
            (root / folder / str(pid)).mkdir(parents=True)
            for j in range(per_id):
                pixels = np.clip(colour + rng.integers(-40, 40, (48, 24, 3)), 0, 255)
                if folder == "Thermal":
                    pixels = np.repeat(pixels.mean(-1, keepdims=True), 3, -1)
                rel = f"{folder}/{pid}/male_front_{prefix}_{j:05d}_{pid}.bmp"
                PIL.fromarray(pixels.astype(np.uint8)).save(root / rel)
                files.setdefault((pid, folder), []).append(rel)
    (root / "idx").mkdir()
    for t in range(1, 11):
        order = [(pid + t) % n_ids + 1 for pid in range(n_ids)]
        parts = {"train": order[: n_ids // 2], "test": order[n_ids // 2 :]}
        for part, ids in parts.items():
            for mod, folder in (("visible", "Visible"), ("thermal", "Thermal")):
                lines = [f"{rel} {pid - 1}" for pid in sorted(ids) for rel in files[(pid, folder)]]
                (root / "idx" / f"{part}_{mod}_{t}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_regdb_run_records_its_trial_direction_and_extra_objectives(tmp_path):
    """One epoch of the paper's CVPR recipe (vcd on the shared branch, vsd on the specific ones,
    vmd on the shared one) on trial 3 of a tiny RegDB tree, thermal-to-visible."""
    root = write_regdb_tree(tmp_path / "RegDB")
    cfg = tmp_path / "tiny.toml"
    extras = ["vsd@specific", "vmd@shared"]
    cfg.write_text(CONFIG.format(cache=tmp_path / "cache", extras=json.dumps(extras)))
    out = tmp_path / "runs"
    sets = ["reid.trial=3", "reid.protocol=regdb/thermal-to-visible@1"]
    args = ["run", "--benchmark", "regdb", "--objective", "vcd", "--root", str(root),
            "--config", str(cfg), "--out", str(out), "--no-progress", "--epochs", "1"]  # fmt: skip
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    (path,) = sorted(out.glob("regdb-*.json"))
    record = read_record(path)
    assert main(["leaderboard", "validate", str(path)]) == 0
    assert record["benchmark"]["trial"] == 3
    assert record["benchmark"]["split_id"] == "regdb/trial-3"
    assert record["protocol"] == "regdb/thermal-to-visible@1"
    assert [t["trial"] for t in record["per_trial"]] == [3]
    assert record["model"]["params"]["objective_on"] == "shared"
    assert record["model"]["params"]["extra_objectives"] == extras
    # 3 test identities x 2 gallery images: the first true match is within the 6 images
    assert record["metrics"]["rank-10"] == 100.0
    rows = [json.loads(x) for x in (out / record["artifacts"]["log"]).read_text().splitlines()]
    (epoch,) = [r for r in rows if r["event"] == "epoch"]
    assert set(epoch["loss"]) == {"ce", "triplet", "obj/vcd", "vsd@specific/vsd", "vmd@shared/vmd"}
    assert all(np.isfinite(v) and v >= 0 for v in epoch["loss"].values())


def _task(tree, tmp_path, objective="mv2d", **reid):
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.runner import make_task

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG.format(cache=tmp_path / "cache", extras="[]"))
    sets = [f"reid.{k}={v}" for k, v in reid.items()]
    config = load_config(
        cfg,
        overrides=sets,
        cli={"run": {"benchmark": "sysu-mm01", "objective": objective, "root": str(tree)}},
    )
    task = make_task(config)
    assert isinstance(task, ReidTask)
    task.setup()
    return task


def test_batches_pair_identities_and_are_reproducible(tree, tmp_path):
    task = _task(tree, tmp_path, epoch='"images"')
    train = task.data.train
    # 4 identities x 4 visible cams x 2 images = 32 visible; 16 infrared; P*K = 4
    assert len(task.vis_pos) == 32 and len(task.ir_pos) == 16
    assert task.num_train_batches(0) == 32 // 4
    a = list(task.train_batches(0, torch.Generator().manual_seed(5)))
    b = list(task.train_batches(0, torch.Generator().manual_seed(5)))
    assert len(a) == 8
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.visible, y.visible) and torch.equal(x.offset, y.offset)
        assert x.visible.shape == x.infrared.shape == (4, 3, 16, 8)
        assert x.visible.dtype == torch.uint8
    # item j of both modalities is one identity, p = 2 identities x k = 2 images
    labels = torch.as_tensor(np.asarray(train.labels))
    modality = torch.as_tensor(np.asarray(train.modality))
    for batch in a:
        assert torch.equal(labels[batch.rows[0]], batch.target)
        assert torch.equal(labels[batch.rows[1]], batch.target)
        assert modality[batch.rows[0]].eq(0).all() and modality[batch.rows[1]].eq(1).all()
        assert len(set(batch.target.tolist())) == 2
        assert torch.equal(batch.visible, train.images(batch.rows[0].numpy()))
    assert task.sampler.identities.tolist() == [0, 1, 2, 3]


def test_augment_pads_crops_and_flips():
    x = torch.arange(2 * 3 * 4 * 2, dtype=torch.uint8).view(2, 3, 4, 2)
    flip = torch.tensor([False, True])
    offset = torch.tensor([[1, 1], [0, 2]])  # item 0: unshifted crop; item 1: up-left, shifted
    out = augment(x, flip, offset, pad=1)
    assert torch.equal(out[0], x[0])
    expected = torch.zeros(3, 4, 2, dtype=torch.uint8)
    expected[:, 1:, :1] = x[1, :, :3, 1:]  # rows shifted down by 1, cols left by 1
    assert torch.equal(out[1], expected.flip(-1))


@pytest.mark.parametrize(
    ("name", "benchmark", "protocol", "trial"),
    [
        ("sysu", "sysu-mm01", "sysu-mm01/all-search/single-shot@2", 0),
        ("regdb", "regdb", "regdb/visible-to-thermal@1", 1),
    ],
)
def test_paper_presets_hold_the_papers_numbers(name, benchmark, protocol, trial):
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.trainer import lr_factor
    from mv2d_bench.models.reid import MlpGaussianBottleneck

    path = Path(__file__).resolve().parents[2] / "configs" / "paper" / f"{name}.toml"
    cfg = load_config(path)
    assert cfg.run.benchmark == benchmark and cfg.run.objective == "mv2d"
    t = cfg.train
    assert (t.epochs, t.lr, t.lr_milestones, t.lr_gamma, t.warmup_epochs) == (
        300,
        2.6e-4,
        [200],
        0.1,
        10,
    )
    # warm-up to 2.6e-4 over 10 epochs, x0.1 from epoch 200 (0-based) on
    factors = [lr_factor(e, t.lr_milestones, t.lr_gamma, t.warmup_epochs) for e in range(300)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == factors[199] == 1.0
    assert factors[200] == factors[299] == pytest.approx(0.1)
    loss, reid, model = cfg.task["loss"], cfg.task["reid"], cfg.task["model"]
    assert (loss.ce, loss.triplet, cfg.objective["weight"]) == (1.0, 1.0, 2.0)
    assert loss.label_smoothing > 0
    assert (reid.p, reid.k, reid.protocol, reid.trial) == (8, 4, protocol, trial)
    assert (reid.preset, model.weights, reid.third_view) == ("paper", "", "gray-visible")
    assert reid.epoch == "identities"  # every identity once per epoch, as the authors count
    assert cfg.benchmark["size"] == [288, 144]
    assert (model.backbone, model.last_stride, model.z_dim, model.hidden) == (
        "resnet50",
        1,
        256,
        [1024, 512],
    )
    # ResNet-50 features are 2048-d: the bottleneck is the paper's 2048-1024-512 -> 2 x 256
    b = MlpGaussianBottleneck(2048, model.z_dim, model.hidden)
    dims = [(m.in_features, m.out_features) for m in b.modules() if isinstance(m, torch.nn.Linear)]
    assert dims == [(2048, 1024), (1024, 512), (512, 2 * 256)]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('model.objective_on="nowhere"', "model.objective_on"),
        ('model.extra_objectives=["vsd@nowhere"]', "model.extra_objectives"),
        ('model.extra_objectives=["vds@specific"]', "vsd"),  # did you mean
        ('reid.epoch="forever"', "reid.epoch"),
        ('reid.protocol="regdb/visible-to-thermal@1"', "reid.protocol"),
        ("reid.p=1", "reid.p"),
    ],
)
def test_bad_reid_settings_name_the_key(tree, tmp_path, setting, message):
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.runner import make_task

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG.format(cache=tmp_path / "cache", extras="[]"))
    config = load_config(
        cfg,
        overrides=[setting],
        cli={"run": {"benchmark": "sysu-mm01", "objective": "mv2d", "root": str(tree)}},
    )
    with pytest.raises(LookupError if "vds" in setting else ValueError, match=message):
        make_task(config).setup()


@pytest.mark.parametrize("eval_batch", [16, 3])
def test_in_run_scores_equal_offline_scores_of_the_same_predictions(
    tree, tmp_path, capsys, eval_batch
):
    """The trainer's loop (eval batches -> predict_step -> the protocol's metric) gives the
    numbers `mv2d-bench score` gives for the same features, whatever the batch size."""
    from mv2d_bench.harness.evaluation import collect_predictions, evaluate

    task = _task(tree, tmp_path, eval_batch_size=eval_batch)
    torch.manual_seed(0)
    model = task.build_model()
    score = evaluate(task, model, "test")
    arrays = collect_predictions(task, model, "test")
    assert arrays["query_feat"].shape == (len(task.data.query), model.embed_dim)
    assert np.array_equal(arrays["gallery_ids"], np.asarray(task.data.gallery.ids))
    np.savez(tmp_path / "p.npz", **arrays)
    capsys.readouterr()
    pid = task.protocol.id
    perms = str(tree / "exp" / "rand_perm_cam.mat")
    assert main(["score", pid, "--predictions", str(tmp_path / "p.npz"), "--json",
                 "--rand-perm-cam", perms]) == 0  # fmt: skip
    offline = json.loads(capsys.readouterr().out)
    assert offline["metrics"] == score.metrics and offline["per_trial"] == score.per_trial
    assert len(score.per_trial) == 10
    assert offline["protocol_gallery"] == task.gallery_info  # the same galleries, and it says so


@pytest.mark.parametrize("preset", ["paper", "authors"])
def test_presets_refuse_random_initialisation_unless_asked(tree, tmp_path, preset):
    """A paper or authors' preset with model.weights = "" stops before anything is loaded; a file
    or an explicit "none" is accepted (and "none" is what the record says)."""
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.runner import make_task

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG.format(cache=tmp_path / "cache", extras="[]"))

    def task(*sets):
        config = load_config(
            cfg, overrides=[f'reid.preset="{preset}"', *sets],
            cli={"run": {"benchmark": "sysu-mm01", "objective": "mv2d", "root": str(tree)}},
        )  # fmt: skip
        return make_task(config)

    with pytest.raises(
        ValueError,
        match=r"'model.weights': expected a local torchvision "
        r"resnet18 state dict .* or \"none\".*found \"\" with the " + preset,
    ):
        task().setup()
    t = task('model.weights="none"')
    t.setup()
    assert t.build_model() is not None
    t.score = None
    assert t.record_fields()["model"]["params"]["weights_sha256"] is None
    import torchvision

    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    t = task(f'model.weights="{weights}"')
    t.setup()
    t.build_model()
    from mv2d_bench.loaders.base import sha256_file

    assert t.record_fields()["model"]["params"]["weights_sha256"] == sha256_file(weights)
    with pytest.raises(ValueError, match="reid.preset"):
        task('reid.preset="mine"').setup()


@pytest.mark.parametrize(
    ("third_view", "views", "intermediates"),
    [
        ("gray-visible", 3, ["shared_intermediate"]),
        ("gray-both", 4, ["shared_intermediate", "shared_intermediate_infrared"]),
        ("none", 2, []),
    ],
)
def test_third_view_sets_the_intermediate_views(tree, tmp_path, third_view, views, intermediates):
    task = _task(tree, tmp_path, third_view=f'"{third_view}"')
    assert task.n_views == views and task.intermediates == intermediates
    torch.manual_seed(0)
    model = task.build_model()
    batch = next(iter(task.train_batches(0, torch.Generator().manual_seed(0))))
    from mv2d_bench.objectives import create

    needs = frozenset({"obs_logits", "rep_logits", "fused_logits", "loo_logits"})
    out = task.forward(model, batch, needs)
    assert len(out.rep_logits) == views
    assert sorted(k for k in out.branches if "intermediate" in k) == sorted(intermediates)
    if third_view == "gray-both":  # the infrared grayscale copy went through the shared branch
        from mv2d_bench.loaders.reid_common import grayscale

        ir = augment(batch.infrared, batch.flip[1], batch.offset[1], task.rc.pad)
        model.eval()
        with torch.no_grad():
            got = model.shared(task._normalise(grayscale(ir))).obs
            want = model(
                task._normalise(ir), task._normalise(ir), None, task._normalise(grayscale(ir))
            )["shared_intermediate_infrared"].obs
        assert torch.allclose(got, want, atol=1e-5)
    terms = create("mv2d")(out)
    assert all(torch.isfinite(v) for v in terms.values())


def test_gray_from_the_normalised_tensor_as_the_authors_code(tree, tmp_path):
    task = _task(tree, tmp_path, gray_from='"normalised"')
    x = torch.randint(0, 256, (2, 3, 16, 8), dtype=torch.uint8)
    n = task._normalise(x)
    g = task._gray(x, n)
    want = 0.2989 * n[:, 0] + 0.5870 * n[:, 1] + 0.1140 * n[:, 2]
    assert g.shape == n.shape and torch.allclose(g[:, 1], want) and torch.equal(g[:, 0], g[:, 2])
    (tmp_path / "p").mkdir()
    pixels = _task(tree, tmp_path / "p")._gray(x, n)
    from mv2d_bench.loaders.reid_common import grayscale

    assert torch.equal(pixels, task._normalise(grayscale(x)))


@pytest.mark.parametrize(("name", "benchmark"), [("sysu", "sysu-mm01"), ("regdb", "regdb")])
def test_authors_presets_hold_their_codes_settings(name, benchmark):
    from mv2d_bench.config import load_config

    path = Path(__file__).resolve().parents[2] / "configs" / "authors" / f"{name}.toml"
    cfg = load_config(path)
    t, loss, model, reid = cfg.train, cfg.task["loss"], cfg.task["model"], cfg.task["reid"]
    assert cfg.run.benchmark == benchmark and cfg.run.objective == "vcd"
    assert (t.epochs, t.lr, t.weight_decay, t.optimizer) == (600, 2.6e-4, 5e-4, "adam")
    assert (t.lr_milestones, t.lr_gamma, t.warmup_epochs, t.warmup_start) == ([209], 0.1, 9, 0.109)
    assert cfg.benchmark["size"] == [384, 192] and (reid.pad, reid.flip) == (0, True)
    assert (reid.p, reid.k, reid.epoch, reid.preset) == (8, 4, "identities", "authors")
    assert (loss.ce, loss.triplet, loss.rank, loss.rank_on) == (1.0, 1.0, "ranked-list", "obs")
    assert (loss.ranked_list_margins, loss.ranked_list_alphas) == ([0.9, 1.0], [2.2, 2.0])
    assert cfg.objective["weight"] == 2.0 and model.extra_objectives == ["vsd@specific"]
    assert (model.bottleneck_type, model.rep_head, model.z_dim, model.hidden) == (
        "deterministic", "mlp", 512, [1000, 500])  # fmt: skip
    assert model.weights == ""  # so the guard asks for the weights
    text = path.read_text()
    for deviation in ("kl_div", "test set", "Sinkhorn", "ShallowCAM", "grayscale"):
        assert deviation in text, deviation  # each listed in the comments


def test_authors_options_train_end_to_end_on_cpu(tree, tmp_path):
    """One epoch with the authors' preset's options (ranked-list loss, deterministic bottleneck,
    MLP head, their warm-up), shrunk to the tiny tree, through `mv2d-bench run`."""
    preset = Path(__file__).resolve().parents[2] / "configs" / "authors" / "sysu.toml"
    sets = ['model.backbone="resnet18"', "model.z_dim=16", "model.hidden=[32, 24]",
            'model.weights="none"', "benchmark.size=[16, 8]",
            f'benchmark.cache_dir="{tmp_path / "cache"}"', "benchmark.progress=false",
            "reid.p=2", "reid.k=2", "reid.eval_batch_size=16"]  # fmt: skip
    out = tmp_path / "runs"
    args = ["run", "--config", str(preset), "--root", str(tree), "--epochs", "2",
            "--out", str(out), "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    (path,) = sorted(out.glob("sysu-mm01-*.json"))
    record = read_record(path)
    assert main(["leaderboard", "validate", str(path)]) == 0
    p = record["model"]["params"]
    assert (p["bottleneck_type"], p["rep_head"], p["weights_sha256"]) == (
        "deterministic",
        "mlp",
        None,
    )
    assert record["config"]["model"]["weights"] == "none"  # random initialisation, on purpose
    rows = [json.loads(x) for x in (out / record["artifacts"]["log"]).read_text().splitlines()]
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert [r["lr"] for r in epochs] == pytest.approx([2.6e-4 * 0.109, 2.6e-4 * (0.109 + 0.099)])
    assert set(epochs[0]["loss"]) == {"ce", "triplet", "obj/vcd", "vsd@specific/vsd"}
    assert all(np.isfinite(v) for r in epochs for v in r["loss"].values())


def test_amp_training_on_cpu_uses_bfloat16_autocast(tree, tmp_path):
    """train.amp: the forward pass runs under autocast (bfloat16 on the CPU; float16 with a
    gradient scaler on CUDA, tested in tests/harness/test_reid_cuda.py where CUDA exists),
    and a CPU step is repeatable and finite: two trainers of one configuration give the same
    terms after a run in this process (oneDNN's bfloat16 convolution, which the trainer turns
    off for CPU AMP, gave different and sometimes NaN terms on one thread)."""
    from mv2d_bench.config import load_config
    from mv2d_bench.harness.runner import make_task
    from mv2d_bench.harness.trainer import Trainer

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG.format(cache=tmp_path / "cache", extras="[]"))
    config = load_config(
        cfg, overrides=["train.amp=true", "train.epochs=1"],
        cli={"run": {"benchmark": "sysu-mm01", "objective": "mv2d", "root": str(tree)}},
    )  # fmt: skip
    runs = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(2):
            trainer = Trainer(make_task(config), config)
            trainer.build()
            assert not trainer.scaler.is_enabled() and trainer.amp_dtype == torch.bfloat16
            seen = []
            handle = trainer.model.visible.trunk.register_forward_hook(
                lambda m, i, o, seen=seen: seen.append((o.dtype, torch.is_autocast_enabled("cpu")))
            )
            batch = next(iter(trainer.task.train_batches(0, torch.Generator().manual_seed(0))))
            trainer.model.train()
            terms = trainer.train_step(batch)
            handle.remove()
            assert seen and all(d == torch.bfloat16 and on for d, on in seen)
            assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in terms.values())
            assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
            runs.append({k: float(v) for k, v in terms.items()})
    finally:
        torch.set_num_threads(threads)
    assert runs[0] == runs[1]
