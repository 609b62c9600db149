"""Checkpoints: plain ``torch.save`` files of tensors and plain values, written atomically with a
SHA-256 digest of their content inside, loaded with ``weights_only=True``, verified against the
digest and checked against the run's configuration.

A checkpoint holds the model, optimizer (HAM/SAM settings included), scheduler, sparsity-method
state, RNG states, the position (epochs done, global step) and the history so far, plus a
fingerprint of the configuration that decides the training trajectory and the identity of the data
(``training.data.base.DataBundle.identity``) it was trained on.
"""

from __future__ import annotations

import hashlib
import io
import numbers
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.config import flatten
from training.data.base import identity_differences
from training.records import ENVIRONMENT_INTERPOLATION
from training.rundir import CHECKPOINT_NAME  # noqa: F401  (the run directory's layout: re-exported for the trainer)
from training.trajectory import config_differences



class CheckpointError(RuntimeError):
    """A checkpoint is unreadable or belongs to another configuration."""


def rng_state() -> dict[str, Any]:
    """Every random generator's state as tensors and plain values (readable with ``weights_only``)."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        ("MT19937", numpy_state["key"].numpy().astype(np.uint32), numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
    )
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


#: ``format`` entry of the checkpoints written here; the first format (a text header before the
#: ``torch.save`` data) started with OLD_MAGIC.
FORMAT = "ham-checkpoint-2"
OLD_MAGIC = b"HAM-CHECKPOINT-1 sha256="
DIGEST_KEY = "content_sha256"
#: the first bytes of torch.save's zip container (a zip file's first local file header)
ZIP_MAGIC = b"PK\x03\x04"


def content_digest(node: Any) -> str:
    """SHA-256 over a payload's content: every tensor's dtype, shape and bytes, every plain value,
    every key, in order. Raises ``TypeError`` for anything ``torch.load(weights_only=True)`` could
    not read back (so a checkpoint never needs to run code to be loaded)."""
    digest = hashlib.sha256()

    def feed(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            data = item.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{item.dtype}{tuple(item.shape)}".encode())
            digest.update(data.view(torch.uint8).numpy() if data.numel() else b"")
        elif isinstance(item, dict):
            digest.update(f"D{len(item)}".encode())
            for key, value in item.items():
                feed(key)
                feed(value)
        elif isinstance(item, (list, tuple)):
            digest.update(f"{'L' if isinstance(item, list) else 'U'}{len(item)}".encode())
            for value in item:
                feed(value)
        elif item is None or isinstance(item, (bool, int, str)):
            digest.update(f"{type(item).__name__}:{item!r};".encode())
        elif isinstance(item, float):
            digest.update(f"float:{item.hex()};".encode())
        else:
            raise TypeError(
                f"a checkpoint may hold only tensors, numbers, strings, lists and dicts, not {type(item).__name__}"
            )

    feed(node)
    return digest.hexdigest()


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` the payload, with its :func:`content_digest` inside, to a temporary file in
    the same directory, flush it to disk, then rename it over ``path``: a plain PyTorch file that
    ``torch.load(path, weights_only=True)`` reads."""
    payload = {"format": FORMAT, **payload}
    payload[DIGEST_KEY] = content_digest(payload)
    buffer = io.BytesIO()  # serialized first, so that a failing write is an OSError (torch's zip writer raises RuntimeError)
    torch.save(payload, buffer)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
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
    """The payload of a checkpoint written by :func:`save_atomic`, loaded with
    ``weights_only=True`` (a file that needs anything but tensors and plain values is refused, so
    reading a checkpoint cannot run code) and verified against its content digest."""
    corrupt = (
        f"checkpoint {path} is corrupt: its content does not match the checksum written with it (a changed or "
        f"truncated byte). It was left untouched; move it away to start this run afresh, or point trainer.resume "
        f"at a good checkpoint."
    )
    try:
        with open(path, "rb") as f:
            start = f.read(len(OLD_MAGIC))
            if start == OLD_MAGIC:
                raise CheckpointError(
                    f"{path} was written by an earlier version of this repository (format HAM-CHECKPOINT-1), which this "
                    f"version cannot resume; it was left untouched: start the run afresh in another directory"
                )
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({error})") from error
    if not start.startswith(ZIP_MAGIC):  # even a truncated container starts so
        raise CheckpointError(
            f"{path} is not a checkpoint written by train.py: it is not the zip container that torch.save writes (a plain pickle, "
            f"a text file or another format); it was not unpickled and was left untouched"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "unsupported global" in str(error).lower():  # torch: "Trying to load unsupported GLOBAL posix.system ..."
            raise CheckpointError(
                f"{path} was refused: it asks to load objects other than tensors and plain values, which could run code "
                f"(a damaged or a crafted file: train.py never writes such objects); it was left untouched, do not use it"
            ) from error
        raise CheckpointError(corrupt) from error
    except Exception as error:  # a truncated or damaged zip container, ...
        raise CheckpointError(corrupt) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or DIGEST_KEY not in payload:
        raise CheckpointError(f"{path} is not a checkpoint written by train.py (it has no format {FORMAT!r} entry)")
    claimed = payload.pop(DIGEST_KEY)
    try:
        matches = content_digest(payload) == claimed
    except TypeError:
        matches = False
    if not matches:
        raise CheckpointError(corrupt)
    return payload


#: the entries of a checkpoint: the types they must have, the least value a number may take (None:
#: not a number), and how that reads
ENTRY_TYPES: dict[str, tuple[tuple[type, ...], int | None, str]] = {
    **{state: ((dict,), None, "a mapping") for state in ("model", "optimizer", "scheduler", "sign_flips", "method", "rng")},
    "epoch": ((int,), 0, "a non-negative integer"), "global_step": ((int,), 0, "a non-negative integer"),
    "wall_time": ((numbers.Real,), 0, "a non-negative number"), "world_size": ((int,), 1, "a positive integer"),
    "threads": ((int,), 1, "a positive integer"), "history": ((list,), None, "a list"),
    "partial": ((dict, type(None)), None, "a mapping or null"),
}


def check_entries(payload: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose entries (:data:`ENTRY_TYPES`) are missing, of another type, or out
    of range, before anything is loaded from it."""
    for key, (types, lowest, meaning) in ENTRY_TYPES.items():
        value = payload.get(key, "<absent>")
        if isinstance(value, bool) or not isinstance(value, types) or (lowest is not None and value < lowest):
            raise CheckpointError(
                f"checkpoint {path} cannot be resumed: its entry {key}={value!r} is not {meaning}, as train.py writes it; it was "
                f"left untouched: resume from a checkpoint that train.py wrote, or start a new run directory"
            )


def check_data(payload: dict[str, Any], identity: dict[str, str], path: Path, where: str) -> str | None:
    """Refuse a checkpoint trained on other data than ``where`` holds now (its recorded identity,
    :attr:`training.data.base.DataBundle.identity`, differs; paths are not part of it). A
    checkpoint without a recorded identity (written before it was recorded) gives the warning returned."""
    saved = payload.get("data")
    if saved is None:
        return (f"warning: checkpoint {path} records no identity of its data (written by an earlier version): "
                f"resuming without checking that {where} holds the data it was trained on")
    differences = identity_differences(saved, identity) if isinstance(saved, dict) else [f"recorded as {saved!r}"]
    if differences:
        raise CheckpointError(
            f"checkpoint {path} was trained on other data than {where} holds now ({'; '.join(differences)}); it was left "
            f"untouched: point data.root at the data it was trained on (the same files may lie anywhere), or start a new run "
            f"directory (name=... or hydra.run.dir=...)"
        )
    return None


#: entries of an optimizer's param groups that change while it trains (the LR scheduler sets ``lr``)
TRAINED_GROUP_KEYS = ("params", "lr")


def settings_differences(saved: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Where a saved optimizer state dict's settings differ from those of the optimizer the config
    builds (``fresh``, its ``state_dict()``): the wrappers' entries (``ham``, ``sam``: the same
    names as the config's keys) and each param group's hyperparameters but ``lr``, as
    ``key=saved where the config gives fresh``."""
    found = []
    for key, settings in fresh.items():
        if key in ("state", "param_groups") or not isinstance(settings, dict):
            continue
        stored = saved.get(key)
        if not isinstance(stored, dict):
            found.append(f"{key}: {stored!r} where the config gives {settings!r}")
            continue
        found += [f"{key}.{name}={stored.get(name, '<absent>')!r} where the config gives {value!r}"
                  for name, value in settings.items() if stored.get(name, "<absent>") != value]
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(fresh["param_groups"]):
        return found + [f"{len(groups) if isinstance(groups, list) else 'no'} param groups where the config builds "
                        f"{len(fresh['param_groups'])}"]
    for index, (stored, group) in enumerate(zip(groups, fresh["param_groups"])):
        found += [f"param group {index} {name}={stored.get(name, '<absent>')!r} where the config gives {value!r}"
                  for name, value in group.items()
                  if name not in TRAINED_GROUP_KEYS and (not isinstance(stored, dict) or stored.get(name, "<absent>") != value)]
    return found


def load_checkpoint(path: Path, config: dict[str, Any], expected: str) -> dict[str, Any]:
    """Load ``path`` and check it was written by the same trajectory configuration (``config`` as
    recorded, ``expected`` its :func:`trajectory_fingerprint`)."""
    payload = read_checkpoint(path)
    if payload.get("fingerprint") != expected:
        saved = payload.get("config")
        diffs = config_differences(saved if isinstance(saved, dict) else {}, config) or [
            f"{key}={value} (a value read from the environment now differs)" for key, value in flatten(config).items()
            if isinstance(value, str) and ENVIRONMENT_INTERPOLATION.search(value)]
        raise CheckpointError(
            f"checkpoint {path} was written by a different configuration ("
            + "; ".join(diffs)
            + "). It was left untouched: run with the original settings to resume it, or choose "
            "another run directory (name=... or hydra.run.dir=...)."
        )
    return payload
