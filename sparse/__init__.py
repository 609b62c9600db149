"""Sparse training methods (depend only on torch): densities, masks, schedules and methods."""

from __future__ import annotations

from typing import Any

from .acdc import ACDC
from .method import MaskedMethod, SparsityMethod
from .mirror import PILoT, Spred
from .random_pai import RandomPaI
from .rigl import RigL
from .str_method import STR

METHODS: dict[str, type[SparsityMethod]] = {
    "dense": SparsityMethod,
    "random": RandomPaI,
    "acdc": ACDC,
    "rigl": RigL,
    "str": STR,
    "pilot": PILoT,
    "spred": Spred,
}


def build_method(name: str, **arguments: Any) -> SparsityMethod:
    """The method registered as ``name`` (:data:`METHODS`), with its keyword arguments."""
    if name not in METHODS:
        raise ValueError(f"method={name!r} is not valid; allowed values: {', '.join(METHODS)}")
    return METHODS[name](**arguments)


__all__ = ["METHODS", "build_method", "SparsityMethod", "MaskedMethod", "RandomPaI", "RigL", "ACDC", "STR", "PILoT", "Spred"]
