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
    assert p_text(0.04969) == "0.0497" and p_text(0.0502) == "0.050"  # never "0.050" for a p below the 0.05 level


@pytest.mark.parametrize("q,df,t", [(0.975, 4, 2.776), (0.975, 8, 2.306), (0.8, 8, 0.889), (0.995, 10, 3.169), (0.95, 1, 6.314),
                                    (0.9, 30, 1.310)])
def test_t_quantile_matches_t_tables(q, df, t):
    from analysis.stats import t_quantile

    assert t_quantile(q, df) == pytest.approx(t, abs=1e-3)
    assert t_quantile(1 - q, df) == pytest.approx(-t, abs=1e-3)


def test_a_one_cell_contrast_is_welchs_test_and_its_interval_is_by_hand():
    from analysis.stats import contrast

    a, b = [1.0, 2.0, 3.0], [4.0, 6.0, 8.0]
    c = contrast([(a, b)])
    diff, t, df, p = welch(a, b)
    assert (c.difference, c.df, c.p) == pytest.approx((diff, df, p))
    assert c.standard_error == pytest.approx(math.sqrt(5 / 3))
    # df = 2.9412: the 97.5 % quantile of t(2.9412), from the quantile's definition P(T <= q) = 0.975
    from analysis.stats import t_cdf

    low, high = c.interval()
    half = (high - low) / 2
    assert (low + high) / 2 == pytest.approx(-4.0)
    assert t_cdf(half / math.sqrt(5 / 3), df) == pytest.approx(0.975, abs=1e-9)


def test_a_contrast_over_cells_averages_the_differences_and_pools_the_variances_by_hand():
    from analysis.stats import contrast, t_cdf

    cells = [([1.0, 2.0, 3.0], [0.0, 0.0, 3.0]), ([5.0, 7.0], [4.0, 4.0, 4.0, 4.0])]
    c = contrast(cells)
    # differences 2 - 1 = 1 and 6 - 4 = 2: D = 1.5; variances s²/n: 1/3, 3/3, 2/2, 0/4
    assert c.difference == pytest.approx(1.5)
    assert c.standard_error == pytest.approx(math.sqrt((1 / 3 + 1 + 1 + 0) / 4))
    # Welch–Satterthwaite: (Σ v)² / Σ v²/(n-1), the zero-variance sample adds nothing
    assert c.df == pytest.approx((1 / 3 + 1 + 1) ** 2 / ((1 / 3) ** 2 / 2 + 1 / 2 + 1 / 1))
    assert c.p == pytest.approx(2 * (1 - t_cdf(1.5 / c.standard_error, c.df)))
    # the detectable effect: (t_{1-α/2} + t_{power}) · SE with the quantiles of t(df)
    from analysis.stats import t_quantile

    assert c.detectable(0.05, 0.8) == pytest.approx((t_quantile(0.975, c.df) + t_quantile(0.8, c.df)) * c.standard_error)
    assert c.detectable(0.01, 0.8) > c.detectable(0.05, 0.8) > c.detectable(0.05, 0.5)
    with pytest.raises(ValueError):
        contrast([([1.0], [2.0, 3.0])])
