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


def build_method(cfg: Any) -> SparsityMethod:
    if cfg.method not in METHODS:
        raise ValueError(f"sparsity.method={cfg.method!r} is not valid; allowed values: {', '.join(METHODS)}")
    if cfg.sign_in and not issubclass(METHODS[cfg.method], MaskedMethod):
        raise ValueError(f"sparsity.sign_in=true combines with random, acdc and rigl, not with sparsity.method={cfg.method}")
    return METHODS[cfg.method](cfg)


__all__ = ["METHODS", "build_method", "SparsityMethod", "MaskedMethod", "RandomPaI", "RigL", "ACDC", "STR", "PILoT", "Spred"]
