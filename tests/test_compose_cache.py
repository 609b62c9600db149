"""Composed configurations read from the cache (training/compose_cache.py) are the ones Hydra
composes: the same values, interpolations, types and flags; any change to what a composition reads is
another key; a damaged entry is composed again; ``HAM_COMPOSE_CACHE=off`` writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from training import compose_cache
from training import config as C

OVERRIDES = ["+experiment=rigl_ham", "setting=small", "sparsity.target=0.8"]


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(compose_cache.VARIABLE, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _hydra_compositions(monkeypatch) -> list[list[str]]:
    """Record each composition that Hydra itself makes."""
    import hydra

    calls: list[list[str]] = []
    real = hydra.compose
    monkeypatch.setattr(hydra, "compose", lambda config_name, overrides: calls.append(list(overrides)) or real(config_name=config_name,
                                                                                                               overrides=overrides))
    return calls


def test_a_cached_composition_is_the_one_hydra_makes(cache, monkeypatch):
    calls = _hydra_compositions(monkeypatch)
    composed = C.compose_config(OVERRIDES)
    read = C.compose_config(OVERRIDES)
    assert calls == [OVERRIDES] and len(list(cache.glob("*.pkl"))) == 1  # the second came from the file
    assert OmegaConf.to_yaml(read) == OmegaConf.to_yaml(composed)  # interpolations as written (sparsity.seed: ${trainer.seed})
    assert read.sparsity.seed == read.trainer.seed and "${trainer.seed}" in OmegaConf.to_yaml(read)
    assert OmegaConf.get_type(read.sparsity) is C.SparsityConfig and OmegaConf.is_struct(read)
    with pytest.raises(Exception):
        read.optimizer.lr = "fast"  # the schema's types still hold
    with pytest.raises(Exception):
        read.optimizer.learning_rate = 0.1  # and its keys


def test_anything_a_composition_reads_is_part_of_its_key(tmp_path):
    root = tmp_path / "configs"
    shutil.copytree(C.CONFIGS_ROOT, root)
    schema = Path(C.__file__)
    key = compose_cache.digest(OVERRIDES, root, schema)
    assert compose_cache.digest(OVERRIDES, root, schema) == key
    assert compose_cache.digest([*OVERRIDES, "trainer.epochs=3"], root, schema) != key
    experiment = root / "experiment" / "rigl_ham.yaml"
    experiment.write_text(experiment.read_text() + "trainer:\n  epochs: 3\n")
    assert compose_cache.digest(OVERRIDES, root, schema) != key
    (root / "experiment" / "new.yaml").write_text("# @package _global_\n")
    changed = compose_cache.digest(OVERRIDES, root, schema)
    copy = tmp_path / "config.py"
    copy.write_text(schema.read_text() + "\n# another schema\n")
    assert compose_cache.digest(OVERRIDES, root, copy) != changed


def test_a_damaged_entry_is_composed_again_and_written_anew(cache, monkeypatch):
    C.compose_config(OVERRIDES)
    entry = next(cache.glob("*.pkl"))
    entry.write_bytes(b"not a pickle")
    calls = _hydra_compositions(monkeypatch)
    assert C.compose_config(OVERRIDES).sparsity.target == 0.8 and calls == [OVERRIDES]
    assert compose_cache.load(entry.stem) is not None


def test_off_composes_every_time_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(compose_cache.VARIABLE, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = _hydra_compositions(monkeypatch)
    C.compose_config(OVERRIDES)
    C.compose_config(OVERRIDES)
    assert len(calls) == 2 and not list(tmp_path.rglob("*.pkl"))
