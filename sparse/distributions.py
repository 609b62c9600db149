r"""Layer-wise densities for a global sparsity ``s``.

* :func:`uniform_densities`: every layer gets density ``1 - s`` (layers listed in ``dense`` get 1).
* :func:`erk_densities` (Erdős–Rényi-kernel, Evci et al. 2020): ``raw_l = Σ dims / Π dims``; find
  ``ε`` with ``Σ_l ε·raw_l·N_l = (1-s)·Σ_l N_l - (dense layers' N_l)``; a layer with ``ε·raw_l > 1``
  becomes dense and ``ε`` is re-solved over the rest until none exceeds 1; ``density_l = ε·raw_l``.

Masks take exact counts: :func:`keep_counts` gives ``floor(density_l · N_l)``.
"""

from __future__ import annotations

import math
from typing import Sequence

Shape = Sequence[int]


def uniform_densities(shapes: Sequence[Shape], sparsity: float, dense: Sequence[int] = ()) -> list[float]:
    return [1.0 if i in dense else 1.0 - sparsity for i in range(len(shapes))]


def erk_densities(shapes: Sequence[Shape], sparsity: float, dense: Sequence[int] = ()) -> list[float]:
    sizes = [math.prod(s) for s in shapes]
    raw = [sum(s) / math.prod(s) for s in shapes]
    dense_set = set(dense)
    budget = (1.0 - sparsity) * sum(sizes)
    while True:
        free = [i for i in range(len(shapes)) if i not in dense_set]
        if not free:
            break
        remaining = budget - sum(sizes[i] for i in dense_set)
        eps = remaining / sum(raw[i] * sizes[i] for i in free)
        over = [i for i in free if eps * raw[i] > 1.0]
        if not over:
            break
        dense_set.update(over)
    return [1.0 if i in dense_set else eps * raw[i] for i in range(len(shapes))]


def keep_counts(shapes: Sequence[Shape], densities: Sequence[float]) -> list[int]:
    """Number of weights kept per layer: ``floor(density · N)``, exact (no coin flips)."""
    return [min(math.prod(s), math.floor(d * math.prod(s) + 1e-9)) for s, d in zip(shapes, densities)]


#: ``sparsity.distribution``: name -> ``(shapes, sparsity, dense layer indices) -> densities``
DISTRIBUTIONS = {"erk": erk_densities, "uniform": uniform_densities}


def layer_densities(kind: str, shapes: Sequence[Shape], sparsity: float, dense: Sequence[int] = ()) -> list[float]:
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"distribution={kind!r} is not valid; allowed values: {', '.join(DISTRIBUTIONS)}")
    return DISTRIBUTIONS[kind](shapes, sparsity, dense)
