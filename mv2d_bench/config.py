"""Run configuration: flat dataclasses read from TOML, strictly validated, ``--set`` overrides.

A run configuration is a TOML file of tables, each a flat dataclass (or a free table)::

    [run]        benchmark, objective, seed, root, device, threads        (RunSection)
    [train]      epochs, batch_size, optimizer, lr, schedule, ...          (TrainConfig)
    [data]       split_seed, fractions, standardize                        (DataConfig)
    [objective]  the objective's constructor keyword arguments (checked against the objective)
    [benchmark]  the benchmark's constructor options (e.g. synthetic-mv's n_views)
    [model], [loss], ...  the task's own sections (``Task.sections``; MVC: MvcModelConfig, ...)

Unknown tables or keys, and values of the wrong type, are errors that name the file and the key.
``--set table.key=value`` overrides one key; the value is read as a TOML value (``1e-3``,
``true``, ``[30, 60]``, ``"text"``; a bare word is taken as a string) and type-checked the same
way. Precedence: dataclass defaults < the file < ``--set``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


MAX_SEED = 2**63 - 1
"""Seeds are 64-bit signed integers (what TOML, torch and the run records hold)."""
SEED_RANGE = "an integer in 0..2**63-1"


class ConfigError(ValueError):
    """A configuration problem; the message names the source (file or --set) and the key."""


@dataclass
class RunSection:
    benchmark: str = ""
    """Benchmark name (``mv2d-bench benchmarks list``)."""
    objective: str = "baseline"
    """Objective name (``mv2d-bench objectives list``)."""
    seed: int = 0
    """Seed of model initialisation, batch order, dropout and bottleneck sampling."""
    root: str = ""
    """Data root ('' : $MV2D_DATA, then the benchmark's default)."""
    device: str = "cpu"
    """'cpu', 'cuda', 'cuda:1', or 'auto' (cuda when available)."""
    threads: int = 0
    """torch intra-op threads (0: leave torch's default)."""


@dataclass
class TrainConfig:
    epochs: int = 160
    batch_size: int = 64
    """The global batch: under torchrun every rank takes its share of each batch."""
    optimizer: str = "adam"
    """'adam' (lr, betas, weight_decay) or 'sgd' (lr, momentum, nesterov, weight_decay)."""
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])
    """Adam's betas."""
    momentum: float = 0.9
    """SGD's momentum (not used by Adam)."""
    nesterov: bool = False
    """SGD with Nesterov momentum (needs momentum > 0)."""
    weight_decay: float = 0.0
    schedule: str = "step"
    """'step' (lr_milestones x lr_gamma) or 'cosine' (to 0 over the epochs after the warm-up)."""
    lr_milestones: list[int] = field(default_factory=lambda: [30, 60])
    """Epochs (0-based, at their start) where the learning rate is multiplied by lr_gamma."""
    lr_gamma: float = 0.05
    warmup_epochs: int = 0
    """Linear warm-up from lr/warmup_epochs to lr over the first epochs (0: none)."""
    warmup_start: float | None = None
    """The warm-up's first factor s: s at epoch 0, s + (1 - s) * epoch / warmup_epochs after,
    1 from epoch warmup_epochs on (a WarmupMultiStepLR with warmup_factor s). None (the
    default): the ramp (epoch + 1) / warmup_epochs."""
    amp: bool = False
    """Automatic mixed precision for training (forward and loss under torch.autocast: float16
    with a gradient scaler on CUDA, bfloat16 on the CPU); evaluation stays float32."""
    drop_last: bool = True
    """Drop the last incomplete training batch (BatchNorm needs more than one item)."""
    eval_every: int = 1
    """Validate every N epochs (and always after the last)."""
    checkpoint_every: int = 0
    """With --checkpoint: also checkpoint every N training steps within an epoch (0: at the end
    of every epoch only). Does not change what the run computes."""
    eval_batch_size: int = 0
    """Items per evaluation batch (0: the task's default; MVC 4096, ReID reid.eval_batch_size).
    Under torchrun evaluation batch b goes to rank b % world size."""
    grad_clip: float = 0.0
    """Clip the global gradient norm to this value (0: no clipping)."""
    progress: bool = True
    """Show a tqdm progress bar with the loss terms."""
    deterministic: bool = True
    """torch.use_deterministic_algorithms (warn_only) for repeatable runs."""


SPLIT_PROCEDURES = ("stratified", "mvnncor")


@dataclass
class DataConfig:
    split_seed: int = 0
    """Seed of the split (fixed across run seeds, as in the paper's protocol)."""
    split: str = "stratified"
    """Split procedure: 'stratified' (a platform-stable hash order; protocol mvc/accuracy@1) or
    'mvnncor' (MvNNcor's per-class random.sample with Python's random.seed(split_seed);
    mvc/accuracy@2, whose split seeds come from the benchmark's data card)."""
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.2, 0.1])
    standardize: bool = True
    """Standardise each view with statistics of the training split."""


COMMON_SECTIONS: dict[str, type] = {"run": RunSection, "train": TrainConfig, "data": DataConfig}
FREE_SECTIONS = ("objective", "benchmark")
# Keys that never change what a run computes (ignored when matching recorded runs).
VOLATILE_KEYS = {
    ("run", "root"),
    ("run", "device"),
    ("run", "threads"),
    ("train", "progress"),
    ("train", "checkpoint_every"),  # when checkpoints are written; computes nothing
    ("reid", "rand_perm_cam"),  # a path; the record keeps the file's sha256
    ("reid", "preset"),  # a label that switches the weights guard on; computes nothing
}
# Keys added after run records existed, with the value that reproduces the behaviour from before
# they existed: at that value they are left out of the run key and of leaderboard grouping, so
# older records (which lack them) still match the runs they describe.
LATER_KEYS: dict[tuple[str, str], Any] = {
    ("train", "optimizer"): "adam",
    ("train", "momentum"): 0.9,
    ("train", "nesterov"): False,
    ("train", "schedule"): "step",
    ("train", "eval_batch_size"): 0,
    ("train", "warmup_start"): None,
    ("train", "amp"): False,
    ("data", "split"): "stratified",
    ("reid", "third_view"): "gray-visible",
    ("reid", "gray_from"): "pixels",
    ("model", "bottleneck_type"): "gaussian",  # ReID's [model]
    ("model", "rep_head"): "linear",
    ("loss", "rank"): "batch-hard",  # ReID's [loss] (MVC's loss.rank is a weight, never this)
    ("loss", "ranked_list_margins"): [0.9, 1.0],
    ("loss", "ranked_list_alphas"): [2.2, 2.0],
    ("loss", "ranked_list_temperature"): 1.0,
}


@dataclass
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    objective: dict[str, Any] = field(default_factory=dict)
    benchmark: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    """Task sections by table name (flat dataclass instances)."""

    def section(self, name: str) -> Any:
        if name in COMMON_SECTIONS:
            return getattr(self, name)
        if name in FREE_SECTIONS:
            return getattr(self, name)
        if name not in self.task:
            raise KeyError(f"config has no section [{name}]")
        return self.task[name]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: dataclasses.asdict(getattr(self, name)) for name in COMMON_SECTIONS
        }
        out["objective"] = dict(self.objective)
        out["benchmark"] = dict(self.benchmark)
        for name, sec in sorted(self.task.items()):
            out[name] = dataclasses.asdict(sec)
        return out


def canonical_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config dict without the :data:`LATER_KEYS` that hold their earlier-behaviour value."""
    cfg = copy.deepcopy(config)
    for (sec, key), value in LATER_KEYS.items():
        section = cfg.get(sec)
        if isinstance(section, dict) and key in section and section[key] == value:
            del section[key]
    return cfg


def run_key(config: dict[str, Any]) -> str:
    """sha256 of a config dict without its volatile keys (what makes two runs the same run);
    :func:`canonical_config` first, so a record from before a key existed matches."""
    cfg = canonical_config(config)
    for sec, key in VOLATILE_KEYS:
        if isinstance(cfg.get(sec), dict):
            cfg[sec].pop(key, None)
    return hashlib.sha256(
        json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


# -- type checking -------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` as type ``tp`` (int -> float allowed), or raise ConfigError at ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list of {_type_name(item_tp)}, got {value!r}")
        return [coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # NaN / inf would only surface as a NaN loss later
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build_section(cls: type, values: dict[str, Any], source: Any, table: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``; unknown keys and bad types are errors.

    ``source`` is a string (file name, "--set ...") or a function key -> source string.
    """
    where = source if callable(source) else (lambda _key: source)
    if not isinstance(values, dict):
        raise ConfigError(f"{where('')}: [{table}] must be a table, got {values!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(
                f"{where(key)}: unknown key '{table}.{key}'; [{table}] accepts: {', '.join(names)}"
            )
        kwargs[key] = coerce(value, hints[key], f"{where(key)}: '{table}.{key}'")
    return cls(**kwargs)


def parse_seeds(text: str, what: str = "--seeds") -> list[int]:
    """A comma-separated list of distinct seeds ("0,1,2")."""
    expected = f"comma-separated distinct integers in 0..2**63-1 (e.g. 0,1,2); got {text!r}"
    items = [x.strip() for x in str(text).split(",")]
    if not text.strip() or any(not x for x in items):
        raise ConfigError(f"{what}: expected {expected}")
    seeds = []
    for x in items:
        try:
            seed = int(x)
        except ValueError:
            raise ConfigError(f"{what}: {x!r} is not an integer; expected {expected}") from None
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"{what}: {seed} is out of range; expected {expected}")
        if seed in seeds:
            raise ConfigError(f"{what}: seed {seed} is listed twice; expected {expected}")
        seeds.append(seed)
    return seeds


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value, or the text itself when it is not one (a bare word)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(item: str, source: str = "--set") -> tuple[str, str, Any]:
    if "=" not in item:
        raise ConfigError(f"{source} {item!r}: expected table.key=value")
    path, _, raw = item.partition("=")
    path = path.strip()
    if path.count(".") != 1 or not all(path.split(".")):
        raise ConfigError(f"{source} {item!r}: expected table.key=value (e.g. train.lr=1e-4)")
    table, key = path.split(".")
    return table, key, parse_value(raw.strip())


UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {
    b"\x00\x00\xfe\xff": "UTF-32 (big-endian)",
    b"\xff\xfe\x00\x00": "UTF-32 (little-endian)",
    b"\xfe\xff": "UTF-16 (big-endian)",
    b"\xff\xfe": "UTF-16 (little-endian)",
}


def read_toml_text(path: str | Path, what: str = "config file") -> str:
    """The text of a TOML file: UTF-8 (a leading UTF-8 byte-order mark is dropped, as editors
    on Windows write one). A missing file, a folder, UTF-16/32 or other non-UTF-8 bytes are a
    :class:`ConfigError` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a TOML {what}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    for bom, name in _OTHER_BOMS.items():
        if data.startswith(bom):
            raise ConfigError(
                f"{path}: the file is {name} text; expected UTF-8 (TOML files are UTF-8: "
                "save it again as UTF-8)"
            )
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; expected a UTF-8 "
            "text file (TOML)"
        ) from None


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    path = Path(path)
    text = read_toml_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def merge_raw(base: dict[str, Any], extra: dict[str, Any], source: str) -> dict[str, Any]:
    """Merge table-by-table (``extra`` wins); every top-level value must be a table."""
    out = copy.deepcopy(base)
    for table, values in extra.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: top-level key '{table}' must be a table like [{table}]")
        out.setdefault(table, {}).update(copy.deepcopy(values))
    return out


def load_config(
    path: str | Path | None = None,
    overrides: list[str | tuple[str, str]] | None = None,
    cli: dict[str, dict[str, Any]] | None = None,
    task_sections: dict[str, type] | None = None,
    raw: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a RunConfig: defaults < ``raw`` < the file ``path`` < ``cli`` < ``--set`` items.

    ``task_sections`` are the task's extra tables; when None they are taken from the task that
    serves the resolved benchmark (:func:`mv2d_bench.harness.tasks.sections_for`).
    """
    merged: dict[str, Any] = {}
    sources: dict[tuple[str, str], str] = {}

    def add(extra: dict[str, Any], source: str) -> None:
        nonlocal merged
        merged = merge_raw(merged, extra, source)
        for table, values in extra.items():
            for key in values:
                sources[(table, key)] = source

    if raw:
        add(raw, "config")
    if path is not None:
        add(read_toml(path), str(path))
    if cli:
        add(
            {t: {k: v for k, v in kv.items() if v is not None} for t, kv in cli.items()},
            "command line",
        )
    for item in overrides or []:
        # an override is "table.key=value" (from --set), or (item, source) naming where it was
        # written (a suite file's 'set')
        item, source = item if isinstance(item, tuple) else (item, "--set")
        table, key, value = parse_override(item, source)
        add({table: {key: value}}, f"{source} {table}.{key}" if source == "--set" else source)

    if task_sections is None:
        bench = merged.get("run", {}).get("benchmark", "")
        if bench:
            from mv2d_bench.harness.tasks import sections_for

            task_sections = sections_for(bench)
        else:
            task_sections = {}
    known = {**COMMON_SECTIONS, **task_sections}
    for table in merged:
        if table not in known and table not in FREE_SECTIONS:
            src = next((s for (t, _), s in sources.items() if t == table), "config")
            allowed = ", ".join(f"[{t}]" for t in [*known, *FREE_SECTIONS])
            raise ConfigError(f"{src}: unknown table [{table}]; expected one of {allowed}")

    def build(table: str, cls: type) -> Any:
        values = merged.get(table, {})
        where = lambda key: sources.get((table, key), "config")  # noqa: E731
        resolve = getattr(cls, "resolve_section", None)
        if resolve is not None:  # a section whose dataclass depends on its values (model.name)
            cls, values = resolve(values, where)
        section = build_section(cls, values, where, table)
        check = getattr(section, "check_section", None)
        if check is not None:  # value checks a section's dataclass defines (model widths, ...)
            check(where)
        return section

    cfg = RunConfig(
        run=build("run", RunSection),
        train=build("train", TrainConfig),
        data=build("data", DataConfig),
        objective=dict(merged.get("objective", {})),
        benchmark=dict(merged.get("benchmark", {})),
        task={name: build(name, cls) for name, cls in task_sections.items()},
    )
    validate(cfg, sources)
    if cfg.run.objective:
        cfg.objective = check_objective_params(cfg.run.objective, cfg.objective, sources)
    return cfg


def validate(cfg: RunConfig, sources: dict[tuple[str, str], str] | None = None) -> None:
    """Value checks beyond the types; the message names where the key was set."""

    def where(key: str) -> str:
        return (sources or {}).get(tuple(key.split(".", 1)), "config")

    t = cfg.train
    checks = [
        (t.epochs >= 1, "train.epochs", "an integer >= 1", t.epochs),
        (t.batch_size >= 2, "train.batch_size", "an integer >= 2", t.batch_size),
        (t.lr > 0, "train.lr", "a number > 0", t.lr),
        (
            len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas),
            "train.betas",
            "two numbers in [0, 1)",
            t.betas,
        ),
        (t.lr_gamma > 0, "train.lr_gamma", "a number > 0", t.lr_gamma),
        (t.optimizer in ("adam", "sgd"), "train.optimizer", "'adam' or 'sgd'", t.optimizer),
        (0 <= t.momentum < 1, "train.momentum", "a number in [0, 1)", t.momentum),
        (
            not t.nesterov or (t.optimizer == "sgd" and t.momentum > 0),
            "train.nesterov",
            "false unless train.optimizer is 'sgd' with train.momentum > 0",
            t.nesterov,
        ),
        (t.schedule in ("step", "cosine"), "train.schedule", "'step' or 'cosine'", t.schedule),
        (
            t.schedule != "cosine" or t.warmup_epochs < t.epochs,
            "train.warmup_epochs",
            "fewer than train.epochs with the cosine schedule",
            t.warmup_epochs,
        ),
        (t.weight_decay >= 0, "train.weight_decay", "a number >= 0", t.weight_decay),
        (t.warmup_epochs >= 0, "train.warmup_epochs", "an integer >= 0", t.warmup_epochs),
        (t.eval_batch_size >= 0, "train.eval_batch_size", "an integer >= 0", t.eval_batch_size),
        (
            t.checkpoint_every >= 0,
            "train.checkpoint_every",
            "an integer >= 0",
            t.checkpoint_every,
        ),
        (t.eval_every >= 1, "train.eval_every", "an integer >= 1", t.eval_every),
        (0 <= cfg.run.seed <= MAX_SEED, "run.seed", SEED_RANGE, cfg.run.seed),
        (
            0 <= cfg.data.split_seed <= MAX_SEED,
            "data.split_seed",
            SEED_RANGE,
            cfg.data.split_seed,
        ),
        (
            cfg.run.threads >= 0,
            "run.threads",
            "an integer >= 0 (0: torch's default)",
            cfg.run.threads,
        ),
        (t.warmup_epochs >= 0, "train.warmup_epochs", "an integer >= 0", t.warmup_epochs),
        (t.weight_decay >= 0, "train.weight_decay", "a number >= 0", t.weight_decay),
        (t.grad_clip >= 0, "train.grad_clip", "a number >= 0 (0: no clipping)", t.grad_clip),
        (
            t.warmup_start is None or 0 < t.warmup_start <= 1,
            "train.warmup_start",
            "a number in (0, 1] (the warm-up's first factor)",
            t.warmup_start,
        ),
        (
            cfg.data.split in SPLIT_PROCEDURES,
            "data.split",
            " or ".join(repr(p) for p in SPLIT_PROCEDURES),
            cfg.data.split,
        ),
        (
            len(cfg.data.fractions) == 3,
            "data.fractions",
            "three numbers (train, val, test)",
            cfg.data.fractions,
        ),
    ]
    for ok, key, expected, got in checks:
        if not ok:
            raise ConfigError(f"{where(key)}: '{key}' must be {expected}; got {got!r}")
    _check_device(cfg.run.device, where("run.device"))


def _check_device(name: str, where: str) -> None:
    import torch

    if name == "auto":
        return
    try:
        torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"{where}: 'run.device' must be cpu, cuda, cuda:N or auto; got {name!r}"
        ) from None


def check_objective_params(
    name: str, params: dict[str, Any], sources: dict[tuple[str, str], str] | None = None
) -> dict[str, Any]:
    """Check [objective] keys against the objective's constructor; coerce by default's type.

    Returns every constructor parameter (defaults filled in), so that two configurations that
    resolve to the same objective compare equal.
    """
    from mv2d_bench import objectives
    from mv2d_bench.objectives.contract import parameters_of

    accepted = parameters_of(objectives.get(name))
    out = dict(accepted)  # resolved: every parameter, defaults filled in
    for key, value in params.items():
        where = (sources or {}).get(("objective", key), "config")
        if key not in accepted:
            raise ConfigError(
                f"{where}: unknown key 'objective.{key}' for objective {name!r}; it accepts: "
                + (", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "nothing")
            )
        default = accepted[key]
        tp = type(default) if default is not None else Any
        out[key] = coerce(value, tp, f"{where}: 'objective.{key}'")
    return out
