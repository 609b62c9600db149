"""The verdict per claim (analysis/claims.py) against statistics and verdicts worked out by hand."""

from __future__ import annotations

import math

import pytest

from analysis.claims import CLAIMS, ClaimError, paper_effect, verdicts
from analysis.runs import Run
from analysis.stats import holm, t_cdf


def run(experiment: str, target: float | None, seed: int, acc: float, alpha: float = 20.0, oneshot: dict | None = None, **extra) -> Run:
    ham = experiment.endswith("_ham")
    config = {"name": experiment, "model": {"name": "lenet300_100"}, "data": {"name": "fashion_mnist", "num_classes": 10},
              "ham": {"enabled": ham, "alpha": alpha}, "optimizer": {"name": "sgd", "lr": 0.05},
              "sparsity": {"method": "dense" if target is None else experiment.split("_")[0], "target": target or 0.9},
              "trainer": {"epochs": 10, "seed": seed}}
    for key, value in extra.items():
        section, name = key.split("__")
        config[section][name] = value
    summary = {"test_acc": acc, **({"oneshot": oneshot} if oneshot else {})}
    return Run(f"{experiment}-{target}-{seed}", config, summary, "finished")


NOISE = (-0.001, 0.0, 0.002)  # seed by seed: mean +0.000333, sample variance of (-1, 0, 2)e-3 = 2.333e-6


def cells(treated: str, baseline: str, gains: tuple[float, ...], base: float = 0.85, **extra) -> list[Run]:
    out = []
    for target, gain in zip((0.8, 0.9, 0.95), gains):
        for seed, noise in enumerate(NOISE):
            out.append(run(baseline, target, seed, base - noise, **extra))
            out.append(run(treated, target, seed, base + gain + noise, **extra))
    return out


def claim(verdict_list, text: str, model: str = "lenet300_100"):
    return next(v for v in verdict_list if v.claim.text.startswith(text) and v.claim.model == model)


def test_paper_effects_are_the_averages_of_the_reference_differences():
    by_text = {(c.text, c.model): c for c in CLAIMS}
    # (74.84 - 73.87 + 72.72 - 71.56 + 70.05 - 68.72) / 3 and the poster's one-shot differences at 0.5 / 0.7 / 0.8 / 0.9
    assert paper_effect(by_text[("HAM improves random PaI", "lenet300_100")]) == pytest.approx((0.97 + 1.16 + 1.33) / 3)
    oneshot = by_text[("dense + HAM is more prunable one-shot", "lenet300_100")]
    assert paper_effect(oneshot) == pytest.approx(((76.824 - 73.404) + (71.940 - 37.776) + (59.008 - 0.424) + (1.384 - 0.104)) / 4)


def test_verdicts_by_hand_direction_parity_and_the_holm_family():
    runs = cells("random_ham", "random", (0.01, 0.01, 0.01))  # +1 point at every target
    runs += cells("spred", "random", (-0.03, -0.03, -0.03))[1::2]  # spred 3 points below (its random runs are the ones above)
    runs += [run("random_ham", t, s, 0.99, alpha=50.0) for t in (0.8, 0.9, 0.95) for s in range(3)]  # another α: left out
    pruned = lambda acc: {"pruned": [{"target": f, "test_acc": acc + f / 100} for f in (0.5, 0.7, 0.8, 0.9)]}  # noqa: E731
    for seed, noise in enumerate(NOISE):
        runs.append(run("dense", None, seed, 0.89, oneshot=pruned(0.80 - noise)))
        runs.append(run("dense_ham", None, seed, 0.89, oneshot=pruned(0.80 + noise)))
    results = verdicts({"suite": runs}, {"lenet300_100": 20.0})
    random, spred, oneshot = claim(results, "HAM improves random PaI"), claim(results, "spred"), claim(results, "dense + HAM is more")
    assert [v for v in results if v.result is not None] == [random, oneshot, spred]  # the others have no runs: "not run"
    assert claim(results, "HAM improves AC/DC").verdict == "not run"
    # random: each cell's difference 1 + 2·(0.0333) points; variance per cell 2 · 2.333e-6/3 (points: ·1e4)
    se = math.sqrt(3 * 2 * (2.3333e-6 * 1e4) / 3 / 9)
    assert random.result.difference == pytest.approx(1 + 2 * 100 * 0.000333, abs=1e-3)
    assert random.result.standard_error == pytest.approx(se, rel=1e-3)
    assert random.result.df == pytest.approx(12.0)  # six samples of three, equal variances: 6 · 2
    p = [v.result.p for v in (random, oneshot, spred)]
    assert random.result.p == pytest.approx(2 * (1 - t_cdf(random.result.difference / se, 12.0)), rel=1e-3)
    assert [random.p_holm, oneshot.p_holm, spred.p_holm] == pytest.approx(holm(p))
    assert random.verdict == "reproduced" and random.n == [(3, 3)] * 3
    # one-shot: each run's mean over the four fractions; the same difference 2·noise as a dense cell
    assert oneshot.result.difference == pytest.approx(2 * 100 * 0.000333, abs=1e-3)
    assert oneshot.p_holm > 0.05 and oneshot.detectable < oneshot.paper and oneshot.verdict == "not reproduced"
    # parity: -3 points, the 90 % interval far outside ±1
    assert spred.result.difference == pytest.approx(-3 + 2 * 100 * 0.000333, abs=1e-3) and spred.verdict == "not reproduced"


def test_too_small_to_tell_and_opposite():
    noisy = cells("random_ham", "random", (0.001, -0.001, 0.0))
    for i, r in enumerate(noisy):  # seed noise of ±2 points: nothing of the paper's +1.15 can show
        r.summary["test_acc"] += (0.02, -0.02, 0.0)[i % 3]
    sign_in = cells("random_signin", "random", (-0.01, -0.01, -0.01), base=0.5)
    results = verdicts({"suite": noisy + [r for r in sign_in if r.experiment == "random_signin"]}, {"lenet300_100": 20.0})
    assert claim(results, "HAM improves random PaI").verdict == "too small to tell"
    results = verdicts({"suite": sign_in}, {"lenet300_100": 20.0})
    assert claim(results, "Sign-In improves random PaI").verdict == "opposite"


def test_runs_of_one_cell_that_differ_in_more_than_the_seed_are_refused():
    runs = cells("random_ham", "random", (0.01, 0.01, 0.01))
    runs.append(run("random", 0.8, 3, 0.85, optimizer__lr=0.1))
    with pytest.raises(ClaimError, match=r"the random runs at target 0.8 differ in more than the seed \(optimizer.lr="):
        verdicts({"suite": runs}, {"lenet300_100": 20.0})
