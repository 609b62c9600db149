r"""Learning-rate schedules, stepped once per iteration (the ``schedule`` config group).

With ``t`` the position in epochs (fractional), ``W`` = ``warmup_epochs``, ``E`` = epochs and
``f`` = ``final_lr_fraction``, the multiplier of the peak lr is

* warm-up (all schedules): ``t / W`` for ``t < W``;
* ``constant``: 1;
* ``cosine``: ``f + (1 - f)·½(1 + cos(π (t - W)/(E - W)))``;
* ``linear_ramp`` (FFCV ResNet-50 recipe): linear from 1 at ``W`` to ``f`` at ``E``;
* ``step``: ``gamma`` to the power of the number of ``milestones`` (epochs) passed.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable

from omegaconf import DictConfig


def lr_multiplier(cfg: DictConfig, epochs: int, steps_per_epoch: int) -> Callable[[int], float]:
    """A function of the global step for ``torch.optim.lr_scheduler.LambdaLR``."""
    warmup, final = float(cfg.warmup_epochs), float(cfg.final_lr_fraction)
    milestones = sorted(float(m) for m in cfg.milestones)

    def multiplier(step: int) -> float:
        t = step / steps_per_epoch
        if t < warmup:
            return t / warmup
        if cfg.name == "constant":
            return 1.0
        progress = min(1.0, (t - warmup) / max(epochs - warmup, 1e-12))
        if cfg.name == "cosine":
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.name == "linear_ramp":
            return 1 + (final - 1) * progress
        if cfg.name == "step":
            return float(cfg.gamma) ** bisect.bisect_right(milestones, t)
        raise ValueError(f"schedule.name={cfg.name!r} is not a known schedule")

    return multiplier
