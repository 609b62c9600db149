"""A run's table cell: which runs may be averaged, and what a run is called in tables, figures and W&B.

A run's *experiment config* is its resolved config flattened to dotted keys without the keys that
do not change the experiment (:data:`NOT_EXPERIMENT`: seeds, paths, logging, threads, resume,
progress, evaluation batch size, safety checks) and without the settings whose switch is off, plus
its number of processes ``world_size`` (the batch size is per process). Runs with equal experiment
configs differ in nothing but the seed: they may be averaged.

A run's *variant* is the part of its experiment config that differs from the *defaults* of its
position: the config ``train.py`` composes from the experiment, the setting and the target alone
(``+experiment=E setting=small sparsity.target=T``, the preset filled; one process). The cell is
(experiment, setting, target, epochs, variant); its label names every key of the variant
(``data.train_subset=6000, ham.alpha=40``), whatever other runs there are; the run length is the
position's own (tables state it in their columns).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Iterable, Mapping

from omegaconf import OmegaConf

from training.config import ConfigError, compose_config, flatten
from training.presets import apply_preset
from training.trajectory import ADDED_KEYS, NON_TRAJECTORY_KEYS, matches, switched_off

#: keys (or key prefixes) that do not change what a run measures
NOT_EXPERIMENT = (
    *NON_TRAJECTORY_KEYS, "name", "trainer.seed", "sparsity.seed", "trainer.eval_batch_size", "trainer.eval_every",
    "trainer.device", "trainer.finite_check_every", "trainer.divergence_factor", "trainer.channels_last", "data.os_cache",
    "ham.fused",
)
#: keys that are the cell's position itself (its run length; the target composes the defaults), never a variant
POSITION_KEYS = ("trainer.epochs", "sparsity.target")
#: the data sources of the ImageNet setting; every other source is the small setting
IMAGE_DATA = ("ffcv_imagenet", "imagefolder")
#: the longest cell name (:func:`cell_name`): W&B's group field takes 128 characters, and the run
#: name adds `` seed<n>``
LONGEST_NAME = 116


def setting_of(data_name: str) -> str:
    """``imagenet`` or ``small``: which of the paper's settings a run with ``data.name`` belongs to."""
    return "imagenet" if data_name in IMAGE_DATA else "small"


def target_of(sparsity: Mapping[str, Any]) -> float | None:
    """A run's target sparsity from its ``sparsity`` config; ``None`` for a dense run."""
    return None if sparsity["method"] == "dense" else float(sparsity["target"])


def experiment_config(config: dict[str, Any], world_size: int = 1) -> dict[str, Any]:
    """The experiment config of a resolved config (dotted keys). A key of :data:`ADDED_KEYS` that
    the config lacks (recorded before the key existed) counts with the value that keeps the behaviour
    those runs had; settings whose switch is off (:func:`training.trajectory.switched_off`) are left out."""
    flat = {**ADDED_KEYS, **flatten(config)}
    off = switched_off(flat)
    out = {k: json.dumps(v) if isinstance(v, list) else v for k, v in flat.items() if k not in off and not matches(k, NOT_EXPERIMENT)}
    out["world_size"] = int(world_size)
    return out


def position_overrides(experiment: str, setting: str, target: float | None) -> list[str]:
    """The overrides that compose a position's defaults (``default``: the run without an experiment)."""
    overrides = [] if experiment == "default" else [f"+experiment={experiment}"]
    overrides += ["setting=small"] if setting == "small" and experiment != "default" else []
    return overrides + ([f"sparsity.target={target:g}"] if target is not None else [])


@functools.cache
def _defaults(experiment: str, setting: str, target: float | None) -> str | None:
    try:
        cfg = compose_config(position_overrides(experiment, setting, target))
        apply_preset(cfg)
    except (ConfigError, ValueError):  # a name that is no experiment (name=...), a target without a preset
        return None
    return json.dumps(experiment_config(OmegaConf.to_container(cfg, resolve=True)))


def defaults(experiment: str, setting: str, target: float | None) -> dict[str, Any] | None:
    """The experiment config of a position's defaults; ``None`` where ``experiment`` is no experiment
    of configs/experiment/ (then no key can be said to differ from its defaults)."""
    found = _defaults(experiment, setting, target)
    return None if found is None else json.loads(found)


def variant(config: dict[str, Any], default: dict[str, Any] | None) -> dict[str, Any]:
    """The keys of an experiment config whose values differ from ``default`` (a key ``default``
    lacks: ``None`` there). A key the config lacks says nothing (a record written before the key
    existed, or a partial config): the groups it would tell apart are told apart by the keys they have."""
    if default is None:
        return {}
    return {k: config[k] for k in sorted(config) if k not in POSITION_KEYS and config[k] != default.get(k)}


def value_text(value: Any) -> str:
    """A value as a label shows it: ``unset`` for null, ``5e-05`` for floats, a path's last part."""
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text and not text.startswith("[") else text


def label(keys: dict[str, Any], longest: int | None = None) -> str:
    """``key=value, ...`` of a variant (sorted). With ``longest`` (W&B's fields are short), a longer
    label names the keys by their last part (``train_subset=6000``), and if it is still longer it is
    cut and ends with a digest of the whole, so that two variants never share a label."""
    text = ", ".join(f"{k}={value_text(v)}" for k, v in sorted(keys.items()))
    if longest is None or len(text) <= longest:
        return text
    text = ", ".join(f"{k.rsplit('.', 1)[-1]}={value_text(v)}" for k, v in sorted(keys.items()))
    if len(text) <= longest:
        return text
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return text[: longest - 11] + f"… #{digest}"


def cell_name(experiment: str, setting: str, target: float | None, epochs: int, keys: dict[str, Any]) -> str:
    """A cell in words, at most :data:`LONGEST_NAME` characters: ``rigl_ham small 90% 2ep
    [ham.alpha=40]`` (the W&B group)."""
    where = f"{experiment} {setting}" + (f" {100 * target:g}%" if target is not None else "") + f" {epochs}ep"
    return where + (f" [{label(keys, LONGEST_NAME - len(where) - 3)}]" if keys else "")


def differences(a: dict[str, Any], b: dict[str, Any], allowed: Iterable[str] = ()) -> list[str]:
    """The keys whose values differ between two experiment configs, except ``allowed`` ones."""
    allowed = tuple(allowed)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and not matches(k, allowed))
