"""What decides a run's training trajectory: its config without the keys that may change between
an interrupted run and its continuation, and the fingerprint a checkpoint is checked against (and
that a finished run's ``summary.json`` is compared by). Torch-free, for the tools that plan runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from omegaconf import DictConfig

from training.config import flatten, resolved
from training.records import recorded

#: Keys that may change between an interrupted run and its continuation.
#: ``sparsity.presets`` only fills a knob, and the filled knob is part of the config itself
NON_TRAJECTORY_KEYS = (
    "trainer.resume", "trainer.progress", "trainer.threads", "trainer.signal_check_every", "trainer.rendezvous_timeout_s", "logger",
    "data.root", "data.workers",
    "sparsity.presets", "sparsity.calibration",
)

#: Keys added to the schema after runs were recorded, each with the value that keeps the behaviour
#: those runs had. A config with that value is the trajectory it was before the key existed, so
#: the key is left out of the trajectory config: earlier checkpoints still resume, earlier
#: summaries still count as finished, and the analysis compares old and new records alike.
ADDED_KEYS = {"sparsity.sign_in_weight_decay": True, "sparsity.pilot_init_constant": 1.0, "sparsity.mirror_lr_scale": 1.0}

#: Switches and the settings that mean nothing while the switch is off (dotted keys or key
#: prefixes, as :func:`matches`): a run without HAM, or without Sign-In, is the same run whatever they are.
SWITCHED_SETTINGS = {
    "ham.enabled": ("ham",),
    "sparsity.sign_in": ("sparsity.sign_in_period", "sparsity.sign_in_weight_decay"),
}


def matches(key: str, prefixes: Iterable[str]) -> bool:
    """Whether a dotted key is one of ``prefixes`` or lies under one (``ham`` covers ``ham.alpha``)."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def switched_off(flat: dict[str, Any]) -> set[str]:
    """The keys of a flat (dotted) config that its switches turn off (:data:`SWITCHED_SETTINGS`)."""
    return {key for switch, settings in SWITCHED_SETTINGS.items() if flat.get(switch) is False
            for key in flat if key != switch and matches(key, settings)}


def trajectory_config(cfg: DictConfig, environment: bool = False) -> dict[str, Any]:
    """The config without the keys that do not change what is trained, as records keep it
    (:func:`training.records.recorded`: ``${oc.env:NAME}`` as written); ``environment=True``: with
    the values read from the environment (what :func:`trajectory_fingerprint` hashes)."""
    return without_non_trajectory_keys(resolved(cfg) if environment else recorded(cfg))


def without_non_trajectory_keys(config: dict[str, Any]) -> dict[str, Any]:
    """A plain config (a run's recorded one, say) without :data:`NON_TRAJECTORY_KEYS`, without the
    :data:`ADDED_KEYS` that have the value of the runs recorded before them, and without the settings
    its switches turn off (:func:`switched_off`: ``ham.enabled=false`` alone, say: a run without HAM
    is the same run whatever ``ham.alpha`` the setting would give HAM); changed in place."""
    off = switched_off(flatten(config))
    for key in (*NON_TRAJECTORY_KEYS, *ADDED_KEYS, *sorted(off)):
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.get(part, {})
        if key in off or key not in ADDED_KEYS or node.get(leaf, ADDED_KEYS[key]) == ADDED_KEYS[key]:
            node.pop(leaf, None)
    return config


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trajectory_fingerprint(cfg: DictConfig) -> str:
    """What a checkpoint is checked against: the trajectory config with the values read from the
    environment (a run whose ``${oc.env:SEED}`` changed is another run), hashed so that those values
    are not written."""
    return fingerprint(trajectory_config(cfg, environment=True))


def config_differences(saved: dict[str, Any], current: dict[str, Any], limit: int = 5) -> list[str]:
    a, b = flatten(saved), flatten(current)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}" for k in keys[:limit]]
