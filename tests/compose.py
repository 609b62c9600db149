"""Compose the project's Hydra configuration in-process (as train.py would) for tests."""

from __future__ import annotations

from training.config import CONFIGS_ROOT, compose_config

__all__ = ["CONFIGS_ROOT", "compose_config", "group_options"]


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS_ROOT / group).glob("*.yaml"))
