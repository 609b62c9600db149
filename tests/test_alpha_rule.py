"""HAM's α by the rule of docs/methods.md §6, against choices worked out by hand."""

from __future__ import annotations

import math

import pytest

from analysis.alpha_rule import AlphaRuleError, choose_alpha
from analysis.runs import Run


def run(experiment: str, alpha: float, seed: int, acc: float | None, model: str = "lenet300_100", **extra) -> Run:
    config = {"name": experiment, "model": {"name": model}, "data": {"name": "fashion_mnist", "num_classes": 10},
              "ham": {"enabled": True, "alpha": alpha, "beta": 1e-3}, "optimizer": {"name": "sgd", "lr": 0.05},
              "sparsity": {"method": "random" if experiment.startswith("random") else "dense", "target": 0.9},
              "trainer": {"epochs": 10, "seed": seed}}
    for key, value in extra.items():
        section, name = key.split("__")
        config[section][name] = value
    if acc is None:
        return Run("x", config, None, "failed", "diverged")
    return Run("x", config, {"test_acc": acc}, "finished")


def grid(scores: dict[float, tuple[list[float], list[float]]], **extra) -> list[Run]:
    return [run(e, alpha, seed, accs[i][seed], **extra) for alpha, accs in scores.items()
            for i, e in enumerate(("dense_ham", "random_ham")) for seed in range(3)]


def test_the_smallest_alpha_within_one_standard_error_of_the_best_is_chosen():
    runs = grid({
        5: ([0.890, 0.892, 0.894], [0.880, 0.880, 0.880]),    # per seed .885 .886 .887: score .886
        20: ([0.894, 0.896, 0.898], [0.880, 0.880, 0.880]),   # .887 .888 .889: score .888
        100: ([0.892, 0.898, 0.904], [0.882, 0.882, 0.882]),  # .887 .890 .893: score .890, the best
    })
    choice = choose_alpha(runs, "lenet300_100")
    # the best's per-seed scores .887 .890 .893: sample std .003, SE .003/√3 = .001732; threshold .888268
    assert choice.best.alpha == 100 and choice.best.score == pytest.approx(0.890)
    assert choice.best.standard_error == pytest.approx(0.003 / math.sqrt(3))
    assert choice.threshold == pytest.approx(0.890 - 0.003 / math.sqrt(3))
    assert choice.alpha == 100  # α = 20 scores .888 < .888268: not a tie
    runs = grid({5: ([0.890, 0.892, 0.894], [0.880, 0.880, 0.880]), 20: ([0.8946, 0.8966, 0.8986], [0.880, 0.880, 0.880]),
                 100: ([0.892, 0.898, 0.904], [0.882, 0.882, 0.882])})
    assert choose_alpha(runs, "lenet300_100").alpha == 20  # .8883 >= .888268: a tie, and ties go to the smaller α


def test_an_alpha_with_a_diverged_run_is_out_and_other_models_are_ignored():
    runs = grid({5: ([0.85, 0.86, 0.87], [0.80, 0.80, 0.80]), 50: ([0.90, 0.90, 0.90], [0.88, 0.88, 0.88])})
    runs[-1] = run("random_ham", 50, 2, None)  # the divergence guard stopped it
    runs += grid({5: ([0.99, 0.99, 0.99], [0.99, 0.99, 0.99])}, model__name="cnn_small")
    choice = choose_alpha(runs, "lenet300_100")
    assert choice.alpha == 5 and choice.rows[1].diverged == ["random_ham seed 2"]
    runs[0] = run("dense_ham", 5, 0, 0.12)  # at chance (1.5 / 10 classes or less) counts as diverged
    with pytest.raises(AlphaRuleError, match="every α of the grid diverged"):
        choose_alpha(runs, "lenet300_100")


def test_missing_runs_and_runs_that_differ_in_more_than_the_seed_are_refused():
    runs = grid({5: ([0.85, 0.86, 0.87], [0.80, 0.80, 0.80])})
    with pytest.raises(AlphaRuleError, match="no random_ham run with trainer.seed=2"):
        choose_alpha(runs[:-1], "lenet300_100")
    runs[1] = run("dense_ham", 5, 1, 0.86, optimizer__lr=0.1)
    with pytest.raises(AlphaRuleError, match=r"differ in more than the seed \(optimizer.lr="):
        choose_alpha(runs, "lenet300_100")
    with pytest.raises(AlphaRuleError, match="no grid runs of model=cnn_small"):
        choose_alpha(runs, "cnn_small")
