"""Time-dependent knobs of the sparsity methods, as plain functions of training progress."""

from __future__ import annotations

import math

#: The AC/DC ResNet-50 recipe for 100 epochs (Peste et al. 2021), as fractions of training:
#: dense warm-up to 10 %, 5 % compressed / decompressed phases (compressed first) up to 75 %,
#: decompressed to 85 %, compressed to the end.
ACDC_WARMUP, ACDC_PHASE, ACDC_ALTERNATE_END, ACDC_DENSE_END = 0.10, 0.05, 0.75, 0.85


def acdc_phases(total: float) -> list[tuple[float, float, bool]]:
    """``(start, end, compressed)`` phases for a run of length ``total`` (epochs or steps)."""
    phases = [(0.0, ACDC_WARMUP * total, False)]
    n_alternating = round((ACDC_ALTERNATE_END - ACDC_WARMUP) / ACDC_PHASE)
    for i in range(n_alternating):
        start = (ACDC_WARMUP + i * ACDC_PHASE) * total
        phases.append((start, start + ACDC_PHASE * total, i % 2 == 0))
    phases.append((ACDC_ALTERNATE_END * total, ACDC_DENSE_END * total, False))
    phases.append((ACDC_DENSE_END * total, float(total), True))
    return phases


def acdc_compressed(step: int, total_steps: int) -> bool:
    """Whether optimizer step ``step`` (0-based) of ``total_steps`` lies in a compressed phase."""
    for start, end, compressed in acdc_phases(total_steps):
        if round(start) <= step < round(end):
            return compressed
    return True


def rigl_drop_fraction(step: int, t_end: int, initial: float = 0.3) -> float:
    """Cosine decay: ``initial/2 · (1 + cos(π·step/T_end))``."""
    return initial / 2 * (1 + math.cos(math.pi * min(step, t_end) / t_end))


def pilot_next_alpha(alpha: float, acc_improved: bool, l1: float, l1_floor: float, epoch: int, epochs: int, delta: float) -> float:
    """PILoT's rule after epoch ``epoch`` (0-based): grow α by δ if the training accuracy improved on
    the previous epoch's, ‖m⊙w‖₁ ≥ K and we are in the first half of training; otherwise shrink it by δ."""
    if acc_improved and l1 >= l1_floor and epoch < epochs / 2:
        return alpha * delta
    return alpha / delta
