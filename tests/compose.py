"""Compose the project's Hydra configuration in-process (as train.py would) for tests."""

from __future__ import annotations

from omegaconf import DictConfig

from training.config import CONFIGS_ROOT, compose_config, validate
from training.presets import apply_preset

__all__ = ["CONFIGS_ROOT", "compose_config", "group_options", "prepare"]


def prepare(cfg: DictConfig) -> None:
    """What train.py does with a composed config before it trains: fill the preset, then validate."""
    apply_preset(cfg)
    validate(cfg)


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS_ROOT / group).glob("*.yaml"))
