"""Structured configs: the schema of every Hydra group, and value checks that name the key.

OmegaConf checks the *types* when the YAML files and command-line overrides are merged into these
dataclasses (``trainer.epochs=abc`` fails there); :func:`validate` checks the *values* before any
work starts (``optimizer.lr=-1`` fails there with the key in the message).
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

MODELS = ("lenet300_100", "lenet5", "cnn", "cnn_small", "resnet20", "resnet18", "resnet50", "timm")
DATASETS = ("fashion_mnist", "synthetic", "imagefolder", "ffcv_imagenet")
OPTIMIZERS = ("sgd", "adamw", "sam")
SCHEDULES = ("constant", "cosine", "step", "linear_ramp")
SPARSITY_METHODS = ("dense", "random", "acdc", "rigl", "str", "pilot", "spred")
WANDB_MODES = ("offline", "online", "disabled")
#: what W&B itself accepts in the WANDB_MODE environment variable (wandb.sdk.wandb_settings)
WANDB_ENV_MODES = ("online", "offline", "disabled", "dryrun", "run", "shared")
HAM_SIGNS = ("post", "pre")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


@dataclass
class ModelConfig:
    name: str = "lenet5"
    timm_name: Optional[str] = None  # for name=timm: any timm model, e.g. resnet18, vit_tiny_patch16_224
    width: int = 1  # channel multiplier of the CIFAR-style ResNets


@dataclass
class DataConfig:
    name: str = "fashion_mnist"
    root: Optional[str] = None  # where the files are; None: the data set's default search order
    num_classes: Optional[int] = 10  # image folders / FFCV: null takes the number of classes of the data
    in_channels: int = 1
    image_size: int = 28
    train_subset: Optional[int] = None  # use only the first N training / test examples
    test_subset: Optional[int] = None
    workers: int = 2  # DataLoader workers / FFCV threads (file-backed data sets)
    synthetic_train_size: int = 2048
    synthetic_test_size: int = 512
    # Image recipe of data=imagefolder and data=ffcv_imagenet (training/data/augment.py): progressive
    # resizing min_res -> max_res between two epochs, validation centre crop resized to val_res.
    min_res: int = 160
    max_res: int = 192
    start_ramp_epoch: int = 74
    end_ramp_epoch: int = 86
    val_res: int = 256
    val_crop_ratio: float = 224 / 256
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])  # per channel, in [0, 1] units
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    os_cache: bool = True  # FFCV: read through the OS page cache (False: FFCV's own process cache)
    order: str = "random"  # FFCV training order: random, or quasi_random (one process, os_cache=false)


@dataclass
class OptimizerConfig:
    name: str = "sgd"
    lr: float = 0.05  # peak learning rate (for lr_reference_batch images, if that is set)
    lr_reference_batch: Optional[int] = None  # scale lr linearly: lr * global_batch / this
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    decay_bn_and_bias: bool = False  # weight decay on BatchNorm parameters and biases
    betas: tuple[float, float] = (0.9, 0.999)  # adamw
    rho: float = 0.05  # sam
    adaptive: bool = False  # sam
    sam_base: str = "sgd"  # the optimizer SAM wraps: sgd or adamw


@dataclass
class HamConfig:
    enabled: bool = True
    alpha: float = 50.0  # the small setting's (configs/ham/small.yaml; docs/methods.md §6)
    beta: float = 1e-3
    clamp: float = 5.0
    max_weight_norm: Optional[float] = 1000.0
    sign: str = "post"
    fused: bool = False
    keep_weight_decay: bool = True  # keep the base weight decay on the tensors HAM acts on


@dataclass
class ScheduleConfig:
    name: str = "linear_ramp"
    warmup_epochs: float = 2.0
    milestones: list[float] = field(default_factory=lambda: [30.0, 60.0, 80.0])  # step: in epochs
    gamma: float = 0.1  # step
    final_lr_fraction: float = 0.0  # cosine, linear_ramp: lr at the end / peak


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 128  # per process
    eval_batch_size: int = 1024
    label_smoothing: float = 0.0
    amp: bool = False  # bf16 autocast (CPU and CUDA alike: no loss scaling needed)
    channels_last: bool = False
    seed: int = 0
    eval_every: int = 1
    resume: str = "auto"  # auto: continue from the run directory's checkpoint; never; or a path
    device: str = "auto"  # auto, cpu, cuda
    threads: Optional[int] = None  # torch.set_num_threads on CPU
    finite_check_every: int = 1  # steps between divergence checks of the loss (each a host sync)
    rendezvous_timeout_s: float = 300.0  # DDP start-up: how long the ranks wait for each other
    signal_check_every: int = 10  # steps between checks for SIGUSR1/SIGUSR2/SIGTERM under DDP (each an all-reduce)
    divergence_factor: float = 20.0  # stop when the loss exceeds this times ln(classes)
    progress: Optional[bool] = None  # null: a progress bar when stdout and stderr are terminals (not in SLURM logs)
    max_steps_per_epoch: Optional[int] = None  # cut epochs short (smoke tests)


@dataclass
class WandbConfig:
    mode: str = "offline"
    project: str = "ham"
    entity: Optional[str] = None
    group: Optional[str] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class SparsityPreset:
    """A method's knob chosen for one target sparsity in one setting (by a committed sweep):
    ``sparsity.<PRESET_KEYS[method]> = value`` when that key is null."""

    method: str
    target: float
    value: float
    ham: Optional[bool] = None  # null: with and without HAM
    derived: bool = False  # carried over from another setting by a formula, not measured in this one


#: The knob through which each method reaches its target (STR's sparsity emerges from its weight
#: decay; PILoT and spred prune at the end, and their penalty decides how much that costs).
PRESET_KEYS = {"str": "str_weight_decay", "pilot": "pilot_alpha", "spred": "spred_weight_decay"}


@dataclass
class SparsityConfig:
    """The ``sparsity`` group; the knobs that depend on the run length are fractions of it."""

    method: str = "dense"  # dense, random, acdc, rigl, str, pilot, spred
    target: float = 0.9  # fraction of zero prunable weights (conv and linear weights)
    distribution: str = "erk"  # layer-wise densities of random/rigl: erk or uniform
    keep_first_dense: bool = False
    keep_last_dense: bool = False
    seed: int = 0  # mask seed (the same on every rank; rank 0's masks are broadcast too)
    sign_in: bool = False  # θ = m ⊙ w with Sign-In resets (with random, acdc, rigl)
    sign_in_period: float = 0.1  # fraction of training between Sign-In resets (our choice)
    sign_in_weight_decay: bool = False  # the base weight decay on Sign-In's m and w: off, measured (results/signin_weight_decay.md)
    rigl_delta_t: int = 100  # steps between mask updates
    rigl_drop_fraction: float = 0.3  # initial drop fraction (cosine decay)
    rigl_t_end: float = 0.75  # fraction of training after which the mask is fixed
    str_s_init: float = -3200.0  # initial threshold logit
    str_weight_decay: Optional[float] = None  # STR: replaces optimizer.weight_decay (weights and thresholds); null: preset
    pilot_alpha: Optional[float] = None  # initial penalty α; null: the setting's preset for the target
    pilot_alpha_growth: float = 10.0  # G: α may grow by G over the first half (δ = G^(1/⌈T/2⌉))
    pilot_l1_floor: float = 0.1  # K as a fraction of the initial ‖θ‖₁ (our choice)
    pilot_init_constant: float = 1.0  # m₀² − w₀² at initialisation (Mask in the Mirror's β; 1 as Sign-In's)
    mirror_lr_scale: float = 1.0  # PILoT, spred: the learning rate of m and w as a multiple of optimizer.lr
    spred_weight_decay: Optional[float] = None  # spred's constant penalty α; null: the setting's preset for the target
    presets: list[SparsityPreset] = field(default_factory=list)  # set by the setting (configs/setting/*.yaml)
    # presets measured by `python scripts/paper_tables.py calibrate` (a YAML file, relative to the
    # repository or absolute); they win over ``presets`` for the same method, HAM and target
    calibration: Optional[str] = None


@dataclass
class TrainConfig:
    name: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    ham: HamConfig = field(default_factory=HamConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)


def register_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


#: the repository's Hydra config groups (a run's own saved config is training.rundir.RUN_CONFIG_DIR)
CONFIGS_ROOT = Path(__file__).resolve().parent.parent / "configs"


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The configuration ``train.py`` would run with these overrides, composed in this process
    (for the scripts around train.py and the tests); a bad override or a key not in the schema is a :class:`ConfigError`."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS_ROOT), version_base="1.3"):
        try:
            cfg = compose(config_name="train", overrides=overrides or [])
        except HydraException as error:
            raise ConfigError(composition_message(error)) from None
    check_keys(cfg)
    return cfg


def composition_message(error: BaseException) -> str:
    """Hydra's composition error in one sentence: its own message with the cause's (a value of the
    wrong type), and for a key that does not exist the closest one there is."""
    text = " ".join(str(error).split())
    cause = error.__cause__ or error.__context__
    if cause is not None and str(cause).strip():
        text += ": " + str(cause).strip().splitlines()[0]
    missing = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    return unknown_key_message([missing.group(1)]) if missing else text


@functools.cache
def schema_keys() -> tuple[str, ...]:
    """Every key of :class:`TrainConfig`, dotted (a list is one key: ``data.mean``); built once (10 ms):
    every validate() and every composed cell of a table asks."""
    return tuple(flatten(OmegaConf.to_container(OmegaConf.structured(TrainConfig))))


def unknown_key_message(unknown: list[str]) -> str:
    """One sentence for keys that are not in the schema, each with the closest key there is (a
    sibling first: ``trainer.epoch`` -> ``trainer.epochs``)."""
    import difflib

    keys = schema_keys()
    closest = {}
    for key in unknown:
        parent, _, leaf = key.rpartition(".")
        siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == parent}
        close = [siblings[m] for m in difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)]
        closest[key] = (close or difflib.get_close_matches(key, keys, n=1, cutoff=0.85) or [None])[0]  # else under another parent
    listing = " (python train.py --cfg job lists them)"
    if len(unknown) == 1:
        key = unknown[0]
        return f"{key} is not a config key" + (f"; did you mean {closest[key]}?" if closest[key] else "") + listing
    named = ", ".join(key + (f" (did you mean {closest[key]}?)" if closest[key] else "") for key in unknown)
    return f"these are not config keys: {named}{listing}"


def check_keys(cfg: DictConfig) -> None:
    """Refuse keys that are not in the schema. Hydra's ``+key=value`` adds a key even to a structured
    config (``+trainer.epoch=1``, the form Hydra's own error suggests for a typo, used to be accepted
    and ignored: a 10-epoch run followed); every such key is named with the closest valid one."""
    keys = set(schema_keys())
    prefixes = {k.rsplit(".", i)[0] for k in keys for i in range(1, k.count(".") + 1)}
    unknown = []
    for key in flatten(OmegaConf.to_container(cfg, resolve=False)):
        if key in keys:
            continue
        parts = key.split(".")  # the shortest part of it that is not in the schema: +trainer.extra={a: 1} is trainer.extra
        shortest = next(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) not in prefixes)
        if shortest not in unknown:
            unknown.append(shortest)
    if unknown:
        raise ConfigError(unknown_key_message(unknown))


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); lists are values."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _choice(cfg: DictConfig, key: str, allowed: tuple[str, ...]) -> None:
    value = OmegaConf.select(cfg, key)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; allowed values: {', '.join(allowed)}")


def _check(condition: bool, key: str, value: Any, rule: str) -> None:
    if not condition:
        raise ConfigError(f"{key}={value!r} is not valid: it must be {rule}")


def _floats(node: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every float of the config, with its dotted key (lists included: ``data.mean.0``)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _floats(v, f"{prefix}{k}.")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _floats(v, f"{prefix}{i}.")
    elif isinstance(node, float):
        yield prefix[:-1], node


def _positive_or_null(cfg: DictConfig, key: str, meaning: str) -> None:
    """``null`` means "not set"; 0 and negatives are refused (they used to be read as "not set")."""
    value = OmegaConf.select(cfg, key)
    _check(value is None or value >= 1, key, value, f">= 1, or null for {meaning}")


REPO_DIR = Path(__file__).resolve().parent.parent


def calibrated_presets(path: str | None) -> list[SparsityPreset]:
    """The presets in a calibration file (``sparsity.calibration``; none if it does not exist yet).
    The file is what ``scripts/paper_tables.py calibrate`` writes: ``presets:`` a list of
    ``{method, ham, target, value, ...}`` (further keys say how each was measured)."""
    if not path:
        return []
    file = Path(path) if Path(path).is_absolute() else REPO_DIR / path
    if not file.exists():
        return []
    bad = (f"sparsity.calibration={path} is not valid: {file} is not a calibration file (a YAML mapping with `presets:`, a list of "
           f"method, ham, target, value); write it again with `python scripts/paper_tables.py calibrate`")
    try:
        data = OmegaConf.to_container(OmegaConf.load(file))
        entries = data["presets"]  # type: ignore[index]
        return [SparsityPreset(method=str(e["method"]), target=float(e["target"]), value=float(e["value"]),
                               ham=None if e.get("ham") is None else bool(e["ham"])) for e in entries]
    except Exception as error:  # YAML errors, a list or a scalar instead of a mapping, missing keys, text for numbers
        raise ConfigError(f"{bad} ({type(error).__name__})") from None


def preset_for(cfg: DictConfig) -> tuple[SparsityPreset | None, str]:
    """The preset a run at ``cfg``'s method, HAM and target would take, and where it is written
    (the calibration file wins over the setting's list); ``(None, "")`` when there is none."""
    s = cfg.sparsity
    ham = bool(cfg.ham.enabled)
    sources = [(calibrated_presets(OmegaConf.select(cfg, "sparsity.calibration")), str(OmegaConf.select(cfg, "sparsity.calibration"))),
               (list(s.presets), "the setting's sparsity.presets")]
    for presets, where in sources:
        for p in presets:
            if p.method == s.method and (p.ham is None or p.ham == ham) and abs(p.target - s.target) < 1e-9:
                return p, where
    return None, ""


def calibrate_command(cfg: DictConfig) -> str:
    """The command that measures the missing preset of ``cfg``'s method (and HAM) in its setting."""
    s = cfg.sparsity
    name = f"{s.method}_ham" if s.method == "str" and cfg.ham.enabled else s.method
    small = " --setting small" if Path(str(s.calibration or "")).stem == "small" else ""
    return f"python scripts/paper_tables.py calibrate {name}{small} --targets {s.target:g}"


def apply_preset(cfg: DictConfig) -> None:
    """Fill the method's knob (:data:`PRESET_KEYS`) from the preset for the target (calibrated or the
    setting's), unless it was set; a target without a preset stops the run instead of running at
    another sparsity, and names the calibration command that measures one."""
    s = cfg.sparsity
    key = PRESET_KEYS.get(s.method)
    if key is None or s[key] is not None:
        return
    preset, _ = preset_for(cfg)
    if preset is None:
        ham = bool(cfg.ham.enabled)
        everything = calibrated_presets(OmegaConf.select(cfg, "sparsity.calibration")) + list(s.presets)
        own = [p for p in everything if p.method == s.method and (p.ham is None or p.ham == ham)]
        targets = ", ".join(sorted({f"{p.target:g}" for p in own}))
        with_ham = f" with ham.enabled={str(ham).lower()}" if any(p.ham is not None for p in everything if p.method == s.method) else ""
        has = f"presets of sparsity.{key} for the targets {targets}" if own else f"no preset of sparsity.{key}"
        raise ConfigError(
            f"sparsity.target={s.target} is not valid for sparsity.method={s.method}{with_ham}: this setting has {has}; "
            f"measure one with `{calibrate_command(cfg)}`, or set sparsity.{key} yourself"
        )
    s[key] = preset.value


def fill_presets_when_composed() -> None:
    """Make Hydra's composition fill the preset knobs (:func:`apply_preset`), so that
    ``python train.py ... --cfg job`` prints the value a run uses instead of ``null``. Hydra has no
    hook after composition, so its ``Hydra.compose_config`` is wrapped (``tests/test_run_records.py``
    fails if a Hydra release changes that). A target without a preset stays ``null`` there; the run
    itself stops on it in :func:`validate`. Only the command line's composition is changed: Hydra's
    ``compose()`` API (``from_shell=False``: :func:`compose_config`, the planning tools, which set
    the target on copies of one composed cell afterwards) gets the knobs unfilled, also in a process
    that imported train.py."""
    from hydra._internal.hydra import Hydra

    compose = Hydra.compose_config
    if getattr(compose, "fills_presets", False):
        return

    def compose_with_presets(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        cfg = compose(self, *args, **kwargs)
        from_shell = kwargs.get("from_shell", args[4] if len(args) > 4 else True)
        if from_shell and OmegaConf.select(cfg, "sparsity.presets") is not None:
            try:
                apply_preset(cfg)
            except ConfigError:
                pass
        return cfg

    compose_with_presets.fills_presets = True  # type: ignore[attr-defined]
    Hydra.compose_config = compose_with_presets  # type: ignore[method-assign]


def wandb_mode(cfg: DictConfig) -> str:
    """The W&B mode a run uses: ``WANDB_MODE`` in the environment wins over ``logger.wandb.mode``
    (it is how users and CI turn W&B off)."""
    return os.environ.get("WANDB_MODE", cfg.logger.wandb.mode)


def wandb_credentials_found() -> bool:
    """Whether an online W&B run could log in: ``WANDB_API_KEY`` (or an identity token file) in the
    environment, or the entry ``wandb login`` writes into ``~/.netrc`` for ``WANDB_BASE_URL``.
    Without them ``wandb.init`` fails after the run started (or waits on a prompt)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    from wandb.sdk.lib.wbauth import read_netrc_auth

    return read_netrc_auth(host=os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")) is not None


#: an interpolation that reads the environment (OmegaConf's resolver; ``${oc.env:NAME}`` or ``${oc.env:NAME,default}``)
ENVIRONMENT_INTERPOLATION = re.compile(r"\$\{\s*oc\.env\s*:")
#: a value that is one such interpolation and nothing else
ONE_ENVIRONMENT_VALUE = re.compile(r"\$\{\s*oc\.env\s*:[^${}]*\}")


def _environment_number(text: str) -> int | float | bool | None:
    """The value of ``${oc.env:NAME}`` when it reads as a number or true/false (a seed from
    ``SLURM_ARRAY_TASK_ID``); None for text (a token, a path) or a variable that is not set."""
    try:
        value = str(OmegaConf.to_container(OmegaConf.create({"v": text}), resolve=True)["v"])
    except Exception:
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            number = kind(value)
        except ValueError:
            continue
        return number if math.isfinite(number) else None
    return None


def recorded(cfg: DictConfig | dict, numbers: bool = True) -> dict:
    """The config as records keep it (``summary.json``, a checkpoint's config, W&B's config, archived
    records, what the analysis reads): every interpolation resolved except those that read the
    environment, which stay as written (``${oc.env:NAME}``), as does any value that refers to one.
    A token in the environment never reaches a file; the run itself uses the resolved value.

    ``numbers``: in the run's own process, a value that is a single ``${oc.env:NAME}`` whose content
    reads as a number or true/false (``trainer.seed=${oc.env:SLURM_ARRAY_TASK_ID}``) is recorded as
    that number, so that the run can be compared (a secret in a number-typed key is not supported).
    Readers of a run's files pass ``numbers=False``: their environment is not the run's."""

    def keep(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: keep(v) for k, v in node.items()}
        if isinstance(node, list):
            return [keep(v) for v in node]
        if isinstance(node, str) and ENVIRONMENT_INTERPOLATION.search(node):
            number = _environment_number(node) if numbers and ONE_ENVIRONMENT_VALUE.fullmatch(node.strip()) else None
            return number if number is not None else node.replace("${", "\\${")  # escaped: resolves to the text as written
        return node

    plain = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    return OmegaConf.to_container(OmegaConf.create(keep(plain)), resolve=True)  # type: ignore[return-value]


def resolved(cfg: DictConfig) -> dict:
    """The config with its interpolations resolved; one that cannot be (``${oops}``: no such key, a
    resolver that fails) is a :class:`ConfigError` naming the key and what it refers to."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "a key"
        raw = OmegaConf.to_container(cfg, resolve=False)
        for part in str(key).split("."):
            raw = raw.get(part) if isinstance(raw, dict) else None  # type: ignore[assignment]
        shown = f"{key}={raw}" if isinstance(raw, str) else str(key)
        reason = str(error).splitlines()[0]
        raise ConfigError(f"{shown} is not valid: its interpolation cannot be resolved ({reason}); give a value, or refer to a "
                          f"key that exists, e.g. ${{trainer.batch_size}}") from None


def validate(cfg: DictConfig) -> None:
    """Check every value that a type cannot express; raise :class:`ConfigError` naming the key.

    First every float of the config must be finite (NaN and infinity are never meaningful here:
    ``ham.alpha=nan`` used to run as if HAM were off); then each key's range. Keys that are not in
    the schema (added with ``+``) are refused first.
    """
    check_keys(cfg)
    for key, value in _floats(resolved(cfg)):
        _check(math.isfinite(value), key, value, "a finite number")
    _choice(cfg, "model.name", MODELS)
    if cfg.model.name == "timm":
        _check(bool(cfg.model.timm_name), "model.timm_name", cfg.model.timm_name,
               "the timm model to train when model=timm (there is no default): e.g. model.timm_name=resnet50; "
               "python -c \"import timm; print(timm.list_models('resnet*'))\" lists timm's models")
        import timm

        _check(timm.is_model(cfg.model.timm_name), "model.timm_name", cfg.model.timm_name,
               "a model timm knows (python -c \"import timm; print(timm.list_models())\" lists them)")
    _check(cfg.model.width >= 1, "model.width", cfg.model.width, ">= 1")
    _choice(cfg, "data.name", DATASETS)
    d = cfg.data
    image_data = d.name in ("imagefolder", "ffcv_imagenet")
    _check(d.num_classes is None and image_data or d.num_classes is not None and d.num_classes >= 2, "data.num_classes",
           d.num_classes, ">= 2 (or null for imagefolder and ffcv_imagenet: the number of classes of the data)")
    _check(d.workers >= 0, "data.workers", d.workers, ">= 0")
    if image_data:
        _check(d.min_res >= 8, "data.min_res", d.min_res, ">= 8 (pixels)")
        _check(d.max_res >= d.min_res, "data.max_res", d.max_res, f">= data.min_res={d.min_res}")
        _check(d.start_ramp_epoch >= 0, "data.start_ramp_epoch", d.start_ramp_epoch, ">= 0")
        _check(d.end_ramp_epoch >= d.start_ramp_epoch, "data.end_ramp_epoch", d.end_ramp_epoch, f">= data.start_ramp_epoch={d.start_ramp_epoch}")
        _check(d.val_res >= 8, "data.val_res", d.val_res, ">= 8 (pixels)")
        _check(0 < d.val_crop_ratio <= 1, "data.val_crop_ratio", d.val_crop_ratio, "in (0, 1]")
        for key in ("mean", "std"):
            values = list(d[key])
            _check(len(values) == 3 and all(math.isfinite(v) for v in values), f"data.{key}", values, "three finite numbers (per RGB channel, in [0, 1] units)")
        _check(all(v > 0 for v in d.std), "data.std", list(d.std), "> 0 per channel")
        if cfg.model.name in ("lenet300_100", "lenet5"):  # a fixed input size (their first linear layer)
            _check(d.min_res == d.max_res == d.val_res, "data.min_res", d.min_res,
                   f"equal to data.max_res and data.val_res with model={cfg.model.name}, which takes one input size "
                   f"(got min_res={d.min_res}, max_res={d.max_res}, val_res={d.val_res})")
        _choice(cfg, "data.order", ("random", "quasi_random"))
        if d.order == "quasi_random":
            _check(not d.os_cache, "data.order", d.order, "random unless data.os_cache=false (FFCV's quasi-random order reads its own page cache)")
    for key in ("data.train_subset", "data.test_subset"):
        value = OmegaConf.select(cfg, key)
        _check(value is None or value > 0, key, value, "a positive number of examples or null")
        # the files of an image folder or a .beton are sorted by class: their first N are a few classes
        _check(value is None or d.name in ("fashion_mnist", "synthetic"), key, value,
               f"null with data.name={d.name} (subsets exist for fashion_mnist and synthetic; write a smaller .beton instead)")
    _choice(cfg, "optimizer.name", OPTIMIZERS)
    _choice(cfg, "optimizer.sam_base", ("sgd", "adamw"))
    _check(cfg.optimizer.lr > 0, "optimizer.lr", cfg.optimizer.lr, "> 0")
    _check(cfg.optimizer.weight_decay >= 0, "optimizer.weight_decay", cfg.optimizer.weight_decay, ">= 0")
    _check(0 <= cfg.optimizer.momentum < 1, "optimizer.momentum", cfg.optimizer.momentum, "in [0, 1)")
    _check(cfg.optimizer.rho >= 0, "optimizer.rho", cfg.optimizer.rho, ">= 0")
    _check(all(0 <= b < 1 for b in cfg.optimizer.betas), "optimizer.betas", list(cfg.optimizer.betas), "two numbers in [0, 1)")
    _positive_or_null(cfg, "optimizer.lr_reference_batch", "no scaling of optimizer.lr with the batch")
    _choice(cfg, "ham.sign", HAM_SIGNS)
    _check(cfg.ham.alpha >= 0, "ham.alpha", cfg.ham.alpha, ">= 0 (ham.alpha=0 or ham=disabled turns the hyperbolic geometry off)")
    _check(cfg.ham.clamp > 0, "ham.clamp", cfg.ham.clamp, "> 0")
    _check(cfg.ham.beta >= 0, "ham.beta", cfg.ham.beta, ">= 0")
    mwn = cfg.ham.max_weight_norm
    _check(mwn is None or mwn > 0, "ham.max_weight_norm", mwn, "> 0 or null")
    _choice(cfg, "schedule.name", SCHEDULES)
    _check(cfg.schedule.warmup_epochs >= 0, "schedule.warmup_epochs", cfg.schedule.warmup_epochs, ">= 0")
    _check(all(m >= 0 for m in cfg.schedule.milestones), "schedule.milestones", list(cfg.schedule.milestones), "epochs >= 0")
    _check(0 < cfg.schedule.gamma <= 1, "schedule.gamma", cfg.schedule.gamma, "in (0, 1]")
    _check(0 <= cfg.schedule.final_lr_fraction <= 1, "schedule.final_lr_fraction", cfg.schedule.final_lr_fraction, "in [0, 1]")
    _check(cfg.trainer.epochs >= 1, "trainer.epochs", cfg.trainer.epochs, ">= 1")
    _check(cfg.trainer.batch_size >= 1, "trainer.batch_size", cfg.trainer.batch_size, ">= 1")
    _check(cfg.trainer.eval_batch_size >= 1, "trainer.eval_batch_size", cfg.trainer.eval_batch_size, ">= 1")
    _positive_or_null(cfg, "trainer.max_steps_per_epoch", "whole epochs")
    _positive_or_null(cfg, "trainer.threads", "torch's default thread count")
    _check(0 <= cfg.trainer.label_smoothing < 1, "trainer.label_smoothing", cfg.trainer.label_smoothing, "in [0, 1)")
    _check(cfg.trainer.eval_every >= 1, "trainer.eval_every", cfg.trainer.eval_every, ">= 1")
    _check(cfg.trainer.divergence_factor > 1, "trainer.divergence_factor", cfg.trainer.divergence_factor, "> 1")
    _check(cfg.trainer.finite_check_every >= 1, "trainer.finite_check_every", cfg.trainer.finite_check_every, ">= 1")
    _check(cfg.trainer.rendezvous_timeout_s > 0, "trainer.rendezvous_timeout_s", cfg.trainer.rendezvous_timeout_s, "> 0 (seconds)")
    _check(cfg.trainer.signal_check_every >= 1, "trainer.signal_check_every", cfg.trainer.signal_check_every, ">= 1")
    _choice(cfg, "trainer.device", ("auto", "cpu", "cuda"))
    if cfg.trainer.device == "cuda":
        import torch

        _check(torch.cuda.is_available(), "trainer.device", "cuda", "auto or cpu here: torch sees no CUDA GPU on this machine")
    _choice(cfg, "logger.wandb.mode", WANDB_MODES)
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode is not None and env_mode not in WANDB_ENV_MODES:
        raise ConfigError(f"WANDB_MODE={env_mode!r} (in the environment, it wins over logger.wandb.mode) is not valid; allowed values: "
                          f"{', '.join(WANDB_ENV_MODES)} (unset it to use logger.wandb.mode)")
    if wandb_mode(cfg) in ("online", "run") and not wandb_credentials_found():
        raise ConfigError(
            "logger.wandb.mode=online needs W&B credentials and none were found (no WANDB_API_KEY, no `wandb login` "
            "entry in ~/.netrc): run `wandb login` or set WANDB_API_KEY, or use logger=offline and `wandb sync` the run later"
        )
    s = cfg.sparsity
    _choice(cfg, "sparsity.method", SPARSITY_METHODS)
    _choice(cfg, "sparsity.distribution", ("erk", "uniform"))
    _check(0 <= s.target < 1, "sparsity.target", s.target, "in [0, 1)")
    if s.sign_in:
        _check(s.method in ("random", "acdc", "rigl"), "sparsity.sign_in", s.sign_in, "false unless sparsity.method is random, acdc or rigl")
    _check(0 < s.sign_in_period <= 1, "sparsity.sign_in_period", s.sign_in_period, "in (0, 1] (a fraction of training)")
    _check(s.rigl_delta_t >= 1, "sparsity.rigl_delta_t", s.rigl_delta_t, ">= 1")
    _check(0 <= s.rigl_drop_fraction < 1, "sparsity.rigl_drop_fraction", s.rigl_drop_fraction, "in [0, 1)")
    _check(0 < s.rigl_t_end <= 1, "sparsity.rigl_t_end", s.rigl_t_end, "in (0, 1]")
    _check(s.pilot_alpha_growth >= 1, "sparsity.pilot_alpha_growth", s.pilot_alpha_growth, ">= 1")
    apply_preset(cfg)
    _check(s.pilot_alpha is None or s.pilot_alpha >= 0, "sparsity.pilot_alpha", s.pilot_alpha, ">= 0 (0: no penalty, the m ⊙ w control)")
    _check(s.pilot_init_constant > 0, "sparsity.pilot_init_constant", s.pilot_init_constant, "> 0 (m₀² − w₀² at initialisation)")
    _check(s.mirror_lr_scale > 0, "sparsity.mirror_lr_scale", s.mirror_lr_scale, "> 0")
    _check(s.mirror_lr_scale == 1 or s.method in ("pilot", "spred"), "sparsity.mirror_lr_scale", s.mirror_lr_scale,
           "1 unless sparsity.method is pilot or spred (the learning rate of their m and w)")
    _check(0 <= s.pilot_l1_floor < 1, "sparsity.pilot_l1_floor", s.pilot_l1_floor, "in [0, 1) (a fraction of the initial L1 norm)")
    _check(s.spred_weight_decay is None or s.spred_weight_decay >= 0, "sparsity.spred_weight_decay", s.spred_weight_decay, ">= 0")
    _check(s.str_weight_decay is None or s.str_weight_decay >= 0, "sparsity.str_weight_decay", s.str_weight_decay, ">= 0 or null")
