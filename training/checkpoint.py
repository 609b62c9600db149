"""Checkpoints: written atomically with a SHA-256 checksum of their content, verified on load and
checked against the run's configuration.

A checkpoint holds the model, optimizer (HAM/SAM settings included), scheduler, sparsity-method
state, RNG states, the position (epochs done, global step) and the history so far, plus a
fingerprint of the configuration that decides the training trajectory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

CHECKPOINT_NAME = "checkpoint.pt"
#: Keys that may change between an interrupted run and its continuation.
#: ``sparsity.presets`` only fills a knob, and the filled knob is part of the config itself
NON_TRAJECTORY_KEYS = (
    "trainer.resume", "trainer.progress", "trainer.threads", "trainer.signal_check_every", "trainer.rendezvous_timeout_s", "logger",
    "data.root", "data.workers",
    "sparsity.presets",
)


class CheckpointError(RuntimeError):
    """A checkpoint is unreadable or belongs to another configuration."""


def trajectory_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without the keys that do not change what is trained."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in NON_TRAJECTORY_KEYS:
        *parents, leaf = key.split(".")
        node = plain
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return plain  # type: ignore[return-value]


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); lists are values."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def config_differences(saved: dict[str, Any], current: dict[str, Any], limit: int = 5) -> list[str]:
    a, b = flatten(saved), flatten(current)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}" for k in keys[:limit]]


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


MAGIC = b"HAM-CHECKPOINT-1 sha256="


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write ``MAGIC + sha256(data) + newline + data`` (``data``: ``torch.save`` of the payload) to a
    temporary file in the same directory, flush it to disk, then rename it over ``path``."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n")
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:  # a full disk, a read-only or vanished directory, ...
        tmp.unlink(missing_ok=True)
        kept = f"the last good checkpoint {path} was kept" if path.exists() else "no checkpoint had been written yet"
        raise CheckpointError(
            f"could not write the checkpoint {path} ({error.strerror or error}); {kept}. Make room (or choose another "
            f"run directory) and run the same command again to resume."
        ) from error


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The payload of a checkpoint written by :func:`save_atomic`, after verifying its checksum.

    A checkpoint is a pickle (``torch.load(weights_only=False)``): load only files you trust.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({error})") from error
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a checkpoint written by train.py (or it is corrupt): it does not start with {MAGIC.decode()!r}")
    header, _, data = raw.partition(b"\n")
    if hashlib.sha256(data).hexdigest().encode() != header[len(MAGIC):]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its content does not match the checksum written with it (a changed or "
            f"truncated byte). It was left untouched; move it away to start this run afresh, or point trainer.resume "
            f"at a good checkpoint."
        )
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); it was left untouched") from error


def load_checkpoint(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Load ``path`` and check it was written by the same trajectory configuration."""
    payload = read_checkpoint(path)
    if not isinstance(payload, dict) or "fingerprint" not in payload:
        raise CheckpointError(f"{path} is not a checkpoint written by train.py")
    if payload["fingerprint"] != fingerprint(config):
        diffs = config_differences(payload["config"], config)
        raise CheckpointError(
            f"checkpoint {path} was written by a different configuration ("
            + "; ".join(diffs)
            + "). It was left untouched: run with the original settings to resume it, or choose "
            "another run directory (name=... or hydra.run.dir=...)."
        )
    return payload
