"""Welch's t-test against values from statistical tables and a hand computation."""

from __future__ import annotations

import math

import pytest

from analysis.stats import regularized_beta, t_two_sided_p, welch


@pytest.mark.parametrize("t,df,p", [(2.776, 4, 0.05), (12.706, 1, 0.05), (2.228, 10, 0.05), (1.96, 1e6, 0.05), (3.707, 6, 0.01)])
def test_two_sided_p_matches_t_tables(t, df, p):
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)


def test_regularized_beta_closed_forms():
    # I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1/2, 1/2) = (2/π)·asin(√x)
    assert regularized_beta(0.3, 1, 1) == pytest.approx(0.3)
    assert regularized_beta(0.6, 3, 1) == pytest.approx(0.6**3)
    assert regularized_beta(0.2, 0.5, 0.5) == pytest.approx(2 / math.pi * math.asin(math.sqrt(0.2)))


def test_welch_by_hand():
    a, b = [1.0, 2.0, 3.0], [4.0, 6.0, 8.0]
    # means 2 and 6; variances 1 and 4; se² = 1/3 + 4/3 = 5/3; t = -4/√(5/3); df = (5/3)² / ((1/9)/2 + (16/9)/2)
    diff, t, df, p = welch(a, b)
    assert diff == -4.0 and t == pytest.approx(-4 / math.sqrt(5 / 3))
    assert df == pytest.approx((5 / 3) ** 2 / ((1 / 9) / 2 + (16 / 9) / 2))
    assert p == pytest.approx(t_two_sided_p(t, df))
    assert welch([1.0, 1.0], [1.0, 1.0])[3] == 1.0
    with pytest.raises(ValueError):
        welch([1.0], [2.0, 3.0])


def test_holm_adjusts_by_hand_computed_values():
    from analysis.stats import holm

    # sorted: 0.005*4 = 0.02; 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1, monotone
    assert holm([]) == []


def test_small_p_values_are_printed_as_such():
    from analysis.stats import p_text

    assert p_text(0.0004) == "< 0.001" and p_text(0.0) == "< 0.001" and p_text(0.001) == "0.001" and p_text(0.0456) == "0.046"
