"""Composed configurations kept on disk: a planner that composes the same cells again (a dry run, a
sweep's listing, the analysis of records) reads each from a file instead of composing it with Hydra
(about 0.1 s of CPU a composition on 2 cores; a table's 13 cells cost more than importing torch).

An entry is keyed by a digest of everything a composition reads: the overrides, every file under the
config root (names and contents), the schema's source file and the versions of Hydra and OmegaConf.
A change to any of them is another key, so an entry is never stale; it is the composed config as
OmegaConf pickles it (interpolations kept, each node with its schema type and flags: reading one
takes a millisecond, where rebuilding the schema and merging YAML onto it took 60). Entries live in
``$HAM_COMPOSE_CACHE`` (default ``$XDG_CACHE_HOME/ham_sparse/compose``, or ``~/.cache/...``), a
directory of the user's own (a pickle is read only from there); ``HAM_COMPOSE_CACHE=off`` composes
every time. A directory that cannot be written is skipped silently: the cache only saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path

import hydra
import omegaconf
from omegaconf import DictConfig

#: the variable that names the cache's directory, or turns it off
VARIABLE = "HAM_COMPOSE_CACHE"


def directory() -> Path | None:
    """Where entries go; None when ``$HAM_COMPOSE_CACHE`` is ``off``."""
    chosen = os.environ.get(VARIABLE)
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ham_sparse" / "compose"


def digest(overrides: list[str], config_root: Path, schema_source: Path) -> str:
    """The key of a composition: the overrides, the config files, the schema and the versions."""
    h = hashlib.sha256(json.dumps([list(overrides), hydra.__version__, omegaconf.__version__]).encode())
    for path in sorted(config_root.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(config_root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(schema_source.read_bytes())
    return h.hexdigest()[:32]


def load(key: str) -> DictConfig | None:
    """The entry ``key`` as Hydra composed it, or None (none yet, or a damaged one)."""
    where = directory()
    path = where / f"{key}.pkl" if where else None
    if path is None or not path.exists():
        return None
    try:
        cfg = pickle.loads(path.read_bytes())
    except Exception:  # a damaged entry (any unpickling error): compose again, and it is written anew
        return None
    return cfg if isinstance(cfg, DictConfig) else None


def store(key: str, cfg: DictConfig) -> None:
    """Keep ``cfg`` as the entry ``key`` (written whole or not at all)."""
    where = directory()
    if where is None:
        return
    temporary = None
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=where, suffix=".tmp", delete=False) as file:
            temporary = Path(file.name)
            file.write(pickle.dumps(cfg))
        os.replace(temporary, where / f"{key}.pkl")
    except OSError:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
