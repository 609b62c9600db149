"""Compose the project's Hydra configuration in-process (as train.py would) for tests."""

from __future__ import annotations

from training.config import CONFIG_DIR, compose_config

__all__ = ["CONFIG_DIR", "compose_config", "group_options"]


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
