from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from training.schedule import lr_multiplier


def _cfg(**kw):
    base = {"name": "cosine", "warmup_epochs": 2.0, "milestones": [3.0, 6.0], "gamma": 0.1, "final_lr_fraction": 0.0}
    base.update(kw)
    return OmegaConf.create(base)


def test_warmup_is_linear_from_zero():
    f = lr_multiplier(_cfg(name="constant"), epochs=10, steps_per_epoch=4)
    assert [f(s) for s in (0, 1, 4, 8, 20)] == [0.0, 0.125, 0.5, 1.0, 1.0]


def test_cosine_hits_half_at_the_middle_and_final_fraction_at_the_end():
    f = lr_multiplier(_cfg(final_lr_fraction=0.1), epochs=10, steps_per_epoch=5)
    assert f(10) == pytest.approx(1.0)
    assert f(30) == pytest.approx(0.1 + 0.9 * 0.5)  # epoch 6 = middle of [2, 10]
    assert f(50) == pytest.approx(0.1)
    assert f(20) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25)))


def test_linear_ramp_decays_linearly_to_zero():
    f = lr_multiplier(_cfg(name="linear_ramp"), epochs=6, steps_per_epoch=1)
    assert [f(s) for s in range(7)] == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0])


def test_step_multiplies_by_gamma_at_each_milestone():
    f = lr_multiplier(_cfg(name="step", warmup_epochs=0.0), epochs=10, steps_per_epoch=2)
    assert [f(s) for s in (0, 5, 6, 11, 12, 19)] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
