"""scripts/decay_budgets.py against closed forms (constant learning rate)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "decay_budgets.py"
spec = importlib.util.spec_from_file_location("decay_budgets", SCRIPT)
decay_budgets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(decay_budgets)  # type: ignore[union-attr]


def test_threshold_path_without_momentum_is_geometric_decay():
    r = {"lrs": [0.5] * 200, "momentum": 0.0, "steps_per_epoch": 10}
    path = decay_budgets.threshold_path(r, wd=0.01, s_init=-3200.0)
    assert path[-1] == pytest.approx(-3200.0 * (1 - 0.5 * 0.01) ** 200)
    # s = -3200·0.995^k reaches -10 at k = ceil(ln(320)/-ln(0.995)) = 1151 > 200 steps: never here
    assert decay_budgets.crossing_epoch(r, path, -10.0) is None


def test_threshold_path_with_momentum_approaches_the_effective_rate():
    # with momentum μ and a small constant lr·wd the decay per step tends to lr·wd/(1-μ)
    r = {"lrs": [0.1] * 20000, "momentum": 0.9, "steps_per_epoch": 100}
    path = decay_budgets.threshold_path(r, wd=1e-4, s_init=-1.0)
    rate = 1 - path[-1] / path[-2]
    assert rate == pytest.approx(0.1 * 1e-4 / (1 - 0.9), rel=1e-3)
    assert decay_budgets.budget(r) == pytest.approx(0.1 * 20000 / 0.1)


def test_crossing_epoch_and_matching_weight_decay_agree():
    r = {"lrs": [0.2] * 5000, "momentum": 0.0, "steps_per_epoch": 100}
    wd = decay_budgets.matching_weight_decay(r, -3200.0, epoch=25.0)
    # geometric decay: -3200·(1 - 0.2·wd)^2500 = -10  =>  wd = (1 - 320^(-1/2500)) / 0.2
    assert wd == pytest.approx((1 - 320 ** (-1 / 2500)) / 0.2, rel=1e-3)
