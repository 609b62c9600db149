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


def _constant(cfg: DictConfig) -> Callable[[float, float], float]:
    return lambda progress, t: 1.0


def _cosine(cfg: DictConfig) -> Callable[[float, float], float]:
    final = float(cfg.final_lr_fraction)
    return lambda progress, t: final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))


def _linear_ramp(cfg: DictConfig) -> Callable[[float, float], float]:
    final = float(cfg.final_lr_fraction)
    return lambda progress, t: 1 + (final - 1) * progress


def _step(cfg: DictConfig) -> Callable[[float, float], float]:
    gamma, milestones = float(cfg.gamma), sorted(float(m) for m in cfg.milestones)
    return lambda progress, t: gamma ** bisect.bisect_right(milestones, t)


#: The schedule registry: ``schedule.name`` -> a builder that reads the group's config once and
#: returns the multiplier after warm-up, a function of the progress through the post-warm-up part
#: (0 to 1) and the position ``t`` in epochs (it runs every step).
SCHEDULES: dict[str, Callable[[DictConfig], Callable[[float, float], float]]] = {
    "constant": _constant,
    "cosine": _cosine,
    "linear_ramp": _linear_ramp,
    "step": _step,
}


def lr_multiplier(cfg: DictConfig, epochs: int, steps_per_epoch: int) -> Callable[[int], float]:
    """A function of the global step for ``torch.optim.lr_scheduler.LambdaLR``."""
    if cfg.name not in SCHEDULES:
        raise ValueError(f"schedule.name={cfg.name!r} is not valid; allowed values: {', '.join(SCHEDULES)}")
    after_warmup = SCHEDULES[cfg.name](cfg)
    warmup = float(cfg.warmup_epochs)

    def multiplier(step: int) -> float:
        t = step / steps_per_epoch
        if t < warmup:
            return t / warmup
        return after_warmup(min(1.0, (t - warmup) / max(epochs - warmup, 1e-12)), t)

    return multiplier
