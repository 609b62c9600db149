"""Which runs may be averaged: those that differ in nothing but the seed.

A run's *experiment config* is its resolved config flattened to dotted keys without the keys that
do not change the experiment (:data:`NOT_EXPERIMENT`: seeds, paths, logging, threads, resume,
progress, evaluation batch size, safety checks), plus its number of processes ``world_size`` (the
batch size is per process). Runs at one table position (setting, experiment, target sparsity,
epochs) whose experiment configs differ are *variants*: each is a cell of its own, labelled with
the keys in which the variants differ (``ham.alpha=50, trainer.max_steps_per_epoch=5``), never one
mean.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from analysis.runs import Run
from training.config import flatten
from training.trajectory import ADDED_KEYS, NON_TRAJECTORY_KEYS, matches, switched_off

#: keys (or key prefixes) that do not change what a run measures
NOT_EXPERIMENT = (
    *NON_TRAJECTORY_KEYS, "name", "trainer.seed", "sparsity.seed", "trainer.eval_batch_size", "trainer.eval_every",
    "trainer.device", "trainer.finite_check_every", "trainer.divergence_factor", "trainer.channels_last", "data.os_cache",
    "ham.fused",
)


def experiment_config(run: Run) -> dict[str, Any]:
    """The run's config as the experiment it is (dotted keys), with its ``world_size``. A key of
    :data:`ADDED_KEYS` that a record lacks (written before the key existed) counts with the value
    that keeps the behaviour those runs had; settings whose switch is off (HAM's without HAM, Sign-In's
    without Sign-In: :func:`training.trajectory.switched_off`) are left out."""
    config = {**ADDED_KEYS, **flatten(run.config)}
    off = switched_off(config)  # HAM's settings mean nothing without HAM, Sign-In's without Sign-In
    config = {k: v for k, v in config.items() if k not in off}
    flat = {k: json.dumps(v) if isinstance(v, list) else v for k, v in config.items() if not matches(k, NOT_EXPERIMENT)}
    flat["world_size"] = int((run.summary or {}).get("world_size") or 1)
    return flat


def differences(a: dict[str, Any], b: dict[str, Any], allowed: Iterable[str] = ()) -> list[str]:
    """The keys whose values differ between two experiment configs, except ``allowed`` ones."""
    allowed = tuple(allowed)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and not matches(k, allowed))


def _text(value: Any) -> str:
    return "unset" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def split(runs: list[Run], ignore: Iterable[str] = ()) -> dict[str, list[Run]]:
    """The runs grouped by experiment config (less the ``ignore`` keys), each group under its label:
    ``""`` when all runs agree, else the keys in which the groups differ with this group's values."""
    ignore = tuple(ignore)
    groups: dict[str, list[Run]] = {}
    configs: dict[str, dict[str, Any]] = {}
    for run in runs:
        config = {k: v for k, v in experiment_config(run).items() if not matches(k, ignore)}
        key = json.dumps(config, sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
        configs[key] = config
    if len(groups) <= 1:
        return {"": runs} if runs else {}
    every = sorted({k for c in configs.values() for k in c})
    differing = [k for k in every if len({json.dumps(c.get(k), default=str) for c in configs.values()}) > 1]
    return {", ".join(f"{k}={_text(configs[key].get(k))}" for k in differing): members for key, members in groups.items()}
