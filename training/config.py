"""Structured configs: the schema of every Hydra group, and value checks that name the key.

OmegaConf checks the *types* when the YAML files and command-line overrides are merged into these
dataclasses (``trainer.epochs=abc`` fails there); :func:`validate` checks the *values* before any
work starts (``optimizer.lr=-1`` fails there with the key in the message).
"""

from __future__ import annotations

import contextlib

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

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
    sam_base: str = "sgd"  # the optimizer SAM wraps: a name of training.optim.BASE_OPTIMIZERS


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


@dataclass
class SparsityConfig:
    """The ``sparsity`` group; the knobs that depend on the run length are fractions of it."""

    method: str = "dense"  # a name of sparse.METHODS (configs/sparsity/)
    target: float = 0.9  # fraction of zero prunable weights (conv and linear weights)
    distribution: str = "erk"  # layer-wise densities of random/rigl: a name of sparse.distributions.DISTRIBUTIONS
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
    """The schema in Hydra's config store (once a process: storing builds it, 60 ms), and the
    resolver that names run directories."""
    from training.rundir import register_dirname_resolver

    store = ConfigStore.instance()
    if "train_schema.yaml" not in store.repo:
        store.store(name="train_schema", node=TrainConfig)
    register_dirname_resolver()


#: the repository's Hydra config groups (a run's own saved config is training.rundir.RUN_CONFIG_DIR)
CONFIGS_ROOT = Path(__file__).resolve().parent.parent / "configs"


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The configuration ``train.py`` would run with these overrides, composed in this process
    (for the scripts around train.py and the tests); a bad override or a key not in the schema is a :class:`ConfigError`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from training import compose_cache

    register_configs()
    check_override_types(overrides or [])
    # inside train.py's Hydra app (the W&B group composes the run's defaults) Hydra is initialised
    # already, with its own search path: compose there; elsewhere compose from CONFIGS_ROOT, or read
    # the composition from the cache (training.compose_cache), whose key covers what it reads
    inside_app = GlobalHydra.instance().is_initialized()
    key = None if inside_app else compose_cache.digest(overrides or [], CONFIGS_ROOT, Path(__file__))
    cfg = compose_cache.load(key) if key else None
    if cfg is None:
        context = contextlib.nullcontext() if inside_app else initialize_config_dir(config_dir=str(CONFIGS_ROOT), version_base="1.3")
        with context:
            try:
                cfg = compose(config_name="train", overrides=overrides or [])
            except HydraException as error:
                raise ConfigError(composition_message(error)) from None
        if key:
            compose_cache.store(key, cfg)
    check_keys(cfg)
    return cfg


def set_overrides(cfg: DictConfig, overrides: list[str]) -> None:
    """``key=value`` overrides (dotted keys, not group choices) set on a composed configuration, each
    value read as Hydra's command line reads it (YAML): what a planner does on copies of one composition."""
    import yaml

    for override in overrides:
        key, value = override.lstrip("+").split("=", 1)
        OmegaConf.update(cfg, key, yaml.safe_load(value))


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


@functools.cache
def boolean_keys() -> frozenset[str]:
    """The dotted keys of :class:`TrainConfig` typed ``bool`` (or ``Optional[bool]``)."""
    from omegaconf.nodes import BooleanNode

    def walk(node: DictConfig, prefix: str) -> Iterator[str]:
        for key in node:
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                yield from walk(child, f"{prefix}{key}.")
            elif isinstance(child, BooleanNode):
                yield f"{prefix}{key}"

    return frozenset(walk(OmegaConf.structured(TrainConfig), ""))


def check_override_types(overrides: list[str]) -> None:
    """Refuse an override of a boolean key whose value is not ``true``/``false`` (or ``null``):
    OmegaConf would turn ``2``, ``"yes"`` or ``"off"`` into a boolean, and a run would record
    ``sparsity.sign_in_weight_decay=2`` as true. Sweeps (``a,b``) are checked in each job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return  # Hydra's own composition names a malformed override
    for override in parsed:
        key = override.key_or_group.lstrip("+~")
        if "${" in (override.input_line or ""):
            continue  # an interpolation: resolved (and its type checked) by the composition
        if key in boolean_keys() and not override.is_sweep_override() and not override.is_delete():
            value = override.value()
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"{key}={override.get_value_element_as_str()} is not valid: it must be true or false")


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


def _component_check(key_prefix: str, check: Any, **arguments: Any) -> None:
    """Run a component's own argument check; its ``argument=value ...`` ValueError names the key."""
    try:
        check(**arguments)
    except ValueError as error:
        raise ConfigError(f"{key_prefix}{error}") from None


def validate(cfg: DictConfig) -> None:
    """Check every value that a type cannot express; raise :class:`ConfigError` naming the key.
    The config is not changed (``train.py`` fills the presets first: ``training.presets.apply_preset``).

    First every float of the config must be finite (NaN and infinity are never meaningful here:
    ``ham.alpha=nan`` used to run as if HAM were off); then each key's range. Keys that are not in
    the schema (added with ``+``) are refused first. The allowed names come from the registries of
    the components (models, data sets, optimizers, schedules, sparsity methods), and each component
    checks its own arguments (HAM, SAM, the sparsity methods); the checks written here span groups
    or belong to the trainer.
    """
    from ham import HAM, SAM
    from training.data import DATASETS
    from training.models import MODELS
    from training.optim import BASE_OPTIMIZERS, OPTIMIZERS, ham_arguments
    from training.cell import IMAGE_DATA
    from training.records import check_wandb
    from training.schedule import SCHEDULES

    check_keys(cfg)
    for key, value in _floats(resolved(cfg)):
        _check(math.isfinite(value), key, value, "a finite number")
    _choice(cfg, "model.name", tuple(MODELS))
    if cfg.model.name == "timm":
        _check(bool(cfg.model.timm_name), "model.timm_name", cfg.model.timm_name,
               "the timm model to train when model=timm (there is no default): e.g. model.timm_name=resnet50; "
               "python -c \"import timm; print(timm.list_models('resnet*'))\" lists timm's models")
        import timm

        _check(timm.is_model(cfg.model.timm_name), "model.timm_name", cfg.model.timm_name,
               "a model timm knows (python -c \"import timm; print(timm.list_models())\" lists them)")
    _check(cfg.model.width >= 1, "model.width", cfg.model.width, ">= 1")
    _choice(cfg, "data.name", tuple(DATASETS))
    d = cfg.data
    image_data = d.name in IMAGE_DATA
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
    _choice(cfg, "optimizer.sam_base", tuple(BASE_OPTIMIZERS))
    _check(cfg.optimizer.lr > 0, "optimizer.lr", cfg.optimizer.lr, "> 0")
    _check(cfg.optimizer.weight_decay >= 0, "optimizer.weight_decay", cfg.optimizer.weight_decay, ">= 0")
    _check(0 <= cfg.optimizer.momentum < 1, "optimizer.momentum", cfg.optimizer.momentum, "in [0, 1)")
    _component_check("optimizer.", SAM.check_arguments, rho=cfg.optimizer.rho)
    _check(all(0 <= b < 1 for b in cfg.optimizer.betas), "optimizer.betas", list(cfg.optimizer.betas), "two numbers in [0, 1)")
    _positive_or_null(cfg, "optimizer.lr_reference_batch", "no scaling of optimizer.lr with the batch")
    _component_check("ham.", HAM.check_arguments, **ham_arguments(cfg.ham))
    _choice(cfg, "schedule.name", tuple(SCHEDULES))
    _check(cfg.schedule.warmup_epochs >= 0, "schedule.warmup_epochs", cfg.schedule.warmup_epochs, ">= 0")
    _check(all(m >= 0 for m in cfg.schedule.milestones), "schedule.milestones", list(cfg.schedule.milestones), "epochs >= 0")
    _check(0 < cfg.schedule.gamma <= 1, "schedule.gamma", cfg.schedule.gamma, "in (0, 1]")
    _check(0 <= cfg.schedule.final_lr_fraction <= 1, "schedule.final_lr_fraction", cfg.schedule.final_lr_fraction, "in [0, 1]")
    _check(cfg.trainer.epochs >= 1, "trainer.epochs", cfg.trainer.epochs, ">= 1")
    _check(cfg.trainer.seed >= 0, "trainer.seed", cfg.trainer.seed, ">= 0 (numpy's generators take no negative seed; a job array's index is one)")
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
    check_wandb(cfg)
    validate_sparsity(cfg)


def validate_sparsity(cfg: DictConfig) -> None:
    """The checks of :func:`validate` on the ``sparsity`` group (and the preset of its target): what a
    planner that sweeps only ``sparsity.*`` keys and seeds over one validated config checks again per
    value (``scripts/paper_tables.py``)."""
    from sparse import METHODS
    from sparse.mirror import MirrorMethod
    from training.methods import check_method_settings
    from training.presets import check_preset

    plain = resolved(cfg.sparsity)
    for key, value in _floats({"sparsity": plain}):
        _check(math.isfinite(value), key, value, "a finite number")
    s = cfg.sparsity
    _choice(cfg, "sparsity.method", tuple(METHODS))
    check_method_settings(plain)
    check_preset(cfg)
    mirrors = [name for name, method in METHODS.items() if issubclass(method, MirrorMethod)]
    _check(s.mirror_lr_scale > 0, "sparsity.mirror_lr_scale", s.mirror_lr_scale, "> 0")
    _check(s.mirror_lr_scale == 1 or s.method in mirrors, "sparsity.mirror_lr_scale", s.mirror_lr_scale,
           f"1 unless sparsity.method is {' or '.join(mirrors)} (the learning rate of their m and w)")
    _check(s.str_weight_decay is None or s.str_weight_decay >= 0, "sparsity.str_weight_decay", s.str_weight_decay, ">= 0 or null")
