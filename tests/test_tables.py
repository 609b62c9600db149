"""The results-table script aggregates run records correctly (checked by hand-computed values)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "small_experiments.py"
spec = importlib.util.spec_from_file_location("small_experiments", SCRIPT)
small_experiments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(small_experiments)  # type: ignore[union-attr]


def test_mirror_presets_table_marks_the_best_final_accuracy_per_target():
    def run(alpha, target, acc):
        sparsity = {"method": "spred", "target": target, "spred_weight_decay": alpha}
        return {"config": {"sparsity": sparsity}, "test_acc": acc, "test_acc_before_prune": 0.88, "pruned_mass_fraction": 0.01}

    runs = [run(1e-3, 0.9, 0.80), run(3e-3, 0.9, 0.85), run(1e-3, 0.8, 0.86), run(3e-3, 0.8, 0.84)]
    table = small_experiments.mirror_presets_table(runs, "cmd")
    bold = [line for line in table.splitlines() if line.startswith("| **")]
    assert bold == ["| **0.001** | **80** | **88.00** | **86.00** | **1.00** |", "| **0.003** | **90** | **88.00** | **85.00** | **1.00** |"]


def test_a_shared_knob_is_chosen_by_the_mean_of_the_per_target_bests():
    def run(alpha, growth, target, acc):
        return {"config": {"sparsity": {"pilot_alpha": alpha, "pilot_alpha_growth": growth, "target": target}}, "test_acc": acc}

    rows = [run(1, 10, 0.8, 0.86), run(2, 10, 0.8, 0.80), run(1, 10, 0.9, 0.70), run(2, 10, 0.9, 0.84),   # G=10: (86+84)/2 = 85
            run(1, 100, 0.8, 0.90), run(2, 100, 0.8, 0.70), run(1, 100, 0.9, 0.60), run(2, 100, 0.9, 0.78)]  # G=100: (90+78)/2 = 84
    best = small_experiments._best_per_target(rows, ("pilot_alpha_growth",))
    assert {t: (r["config"]["sparsity"]["pilot_alpha"], r["config"]["sparsity"]["pilot_alpha_growth"]) for t, r in best.items()} == {
        0.8: (1, 10), 0.9: (2, 10)}  # though the single best run at 80 % has G=100


def _dense_run(experiment: str, seed: int, unpruned: float, at_90: float, epochs: int = 10):
    from analysis.runs import Run

    config = {"name": experiment, "data": {"name": "fashion_mnist"}, "sparsity": {"method": "dense"},
              "trainer": {"epochs": epochs, "seed": seed}, "ham": {"enabled": "ham" in experiment},
              "optimizer": {"name": "sam" if "sam" in experiment else "sgd"}}
    oneshot = {"test_acc": unpruned, "pruned": [{"target": 0.9, "sparsity": 0.9, "test_acc": at_90}]}
    return Run(f"{experiment}-{seed}", config, {"test_acc": unpruned, "oneshot": oneshot}, "finished")


def test_oneshot_table_averages_seeds_per_pruned_fraction_beside_the_paper():
    from analysis import tables as T
    from analysis.stats import welch

    runs = [_dense_run("dense", 0, 0.90, 0.50), _dense_run("dense", 1, 0.88, 0.70),
            _dense_run("dense_ham", 0, 0.91, 0.80), _dense_run("dense_ham", 1, 0.91, 0.90),
            _dense_run("dense_ham", 1, 0.10, 0.10),  # the same cell and seed again: left out
            _dense_run("dense_sam", 0, 0.5, 0.4)]  # columns of their own
    rows = T.oneshot(runs, "small")
    assert rows[0][:4] == ["pruned fraction", "dense SAM 10 ep (paper: 100 ep)", "dense + HAM SAM 10 ep (paper: 100 ep)", "HAM − dense SAM 10 ep (paper: 100 ep) (points, Welch p, Holm p)"]
    assert [r[1:4] for r in rows[1:]] == [["50.00 (n=1)", "missing", "–"], ["40.00 (n=1)", "missing", "–"]]
    rows = [r[:1] + r[4:] for r in rows]  # the SGD columns
    assert rows[0][:4] == ["pruned fraction", "dense SGD 10 ep (paper: 100 ep)", "dense + HAM SGD 10 ep (paper: 100 ep)", "HAM − dense SGD 10 ep (paper: 100 ep) (points, Welch p, Holm p)"]
    unpruned, at_90 = rows[1], rows[2]
    assert unpruned[:3] == ["0 (unpruned)", "89.00 ± 1.41 (n=2)", "91.00 ± 0.00 (n=2)"]  # std of (90, 88) = sqrt(2)
    assert at_90[:3] == ["0.9", "60.00 ± 14.14 (n=2)", "85.00 ± 7.07 (n=2)"]  # std of (50, 70) = sqrt(200)
    p_unpruned, p_90 = welch([0.91, 0.91], [0.90, 0.88])[3], welch([0.8, 0.9], [0.5, 0.7])[3]
    holm_90 = min(1.0, 2 * min(p_unpruned, p_90)) if p_90 < p_unpruned else max(min(1.0, 2 * p_unpruned), p_90)  # Holm over the 2 tests
    assert at_90[3] == f"+25.00 (p = {p_90:.3f}, Holm p = {holm_90:.3f})"
    reference = json.loads(T.REFERENCE.read_text())["oneshot_pruning"]
    assert at_90[4:] == [f"{reference['baseline']['0.9']:.2f}", f"{reference['ham']['0.9']:.2f}"]  # the paper's in our order
    assert unpruned[4:] == ["–", "–"]


def test_a_variant_every_oneshot_column_shares_is_said_once_above_the_table():
    from analysis import tables as T

    def at_alpha_20(name, seed, acc, pruned):
        run = _dense_run(name, seed, acc, pruned)
        run.config["ham"]["alpha"] = 20.0  # the small setting's α is 50: a variant of every + HAM column
        return run

    runs = [_dense_run("dense", 0, 0.9, 0.5), at_alpha_20("dense_ham", 0, 0.91, 0.8)]
    rows = T.oneshot(runs, "small")
    assert rows.above == "Every column of ours: ham.alpha=20."
    assert all("[" not in header for header in rows[0]) and rows[0][1] == "dense SGD 10 ep (paper: 100 ep)"
    assert T.markdown(rows).startswith("Every column of ours: ham.alpha=20.\n\n| pruned fraction |")


def test_oneshot_table_shows_missing_cells_and_needs_two_seeds_for_a_p_value():
    from analysis import tables as T

    rows = T.oneshot([_dense_run("dense", 0, 0.9, 0.5)], "small")
    assert rows[2][1:4] == ["50.00 (n=1)", "missing", "–"]
    rows = T.oneshot([_dense_run("dense", 0, 0.9, 0.5), _dense_run("dense_ham", 0, 0.9, 0.6)], "small")
    assert rows[2][3] == "+10.00 (needs 2+ seeds each for p)"


def test_oneshot_cells_of_another_ham_alpha_are_never_averaged_and_recalibrated_columns_follow():
    """dense + HAM at α = 20 and α = 100 are two cells, each beside the same dense runs; runs with BatchNorm
    recalibration results get the recalibrated columns too."""
    from analysis import tables as T

    def at(alpha, seed, acc, recalibrated=None):
        run = _dense_run("dense_ham", seed, 0.9, acc)
        run.config["ham"]["alpha"] = alpha
        if recalibrated is not None:
            run.summary["oneshot"]["pruned"][0]["test_acc_bn_recalibrated"] = recalibrated
        return run

    runs = [_dense_run("dense", 0, 0.9, 0.50), _dense_run("dense", 1, 0.9, 0.60),
            at(20, 0, 0.70), at(20, 1, 0.72), at(100, 0, 0.80, 0.85), at(100, 1, 0.84, 0.87)]
    for run in runs[:2]:
        run.summary["oneshot"]["pruned"][0]["test_acc_bn_recalibrated"] = 0.8
    rows = T.oneshot(runs, "small")
    assert rows[0][1:] == ["dense SGD 10 ep (paper: 100 ep) [ham.alpha=100]", "dense + HAM SGD 10 ep (paper: 100 ep) [ham.alpha=100]",
                           "HAM − dense SGD 10 ep (paper: 100 ep) [ham.alpha=100] (points, Welch p, Holm p)",
                           "dense SGD 10 ep (paper: 100 ep) [ham.alpha=100], BN recalibrated", "dense + HAM SGD 10 ep (paper: 100 ep) [ham.alpha=100], BN recalibrated",
                           "HAM − dense SGD 10 ep (paper: 100 ep) [ham.alpha=100], BN recalibrated (points, Welch p, Holm p)",
                           "dense SGD 10 ep (paper: 100 ep) [ham.alpha=20]", "dense + HAM SGD 10 ep (paper: 100 ep) [ham.alpha=20]",
                           "HAM − dense SGD 10 ep (paper: 100 ep) [ham.alpha=20] (points, Welch p, Holm p)",
                           "dense SGD 10 ep (paper: 100 ep) [ham.alpha=20], BN recalibrated", "dense + HAM SGD 10 ep (paper: 100 ep) [ham.alpha=20], BN recalibrated",
                           "HAM − dense SGD 10 ep (paper: 100 ep) [ham.alpha=20], BN recalibrated (points, Welch p, Holm p)",
                           "paper dense (ImageNet)", "paper HAM (ImageNet)"]
    at_90 = rows[2]
    assert at_90[1:3] == ["55.00 ± 7.07 (n=2)", "82.00 ± 2.83 (n=2)"] and at_90[3].startswith("+27.00")  # (80 + 84) / 2 - (50 + 60) / 2
    assert at_90[4:6] == ["80.00 ± 0.00 (n=2)", "86.00 ± 1.41 (n=2)"]  # recalibrated: (85 + 87) / 2
    assert at_90[7:9] == ["55.00 ± 7.07 (n=2)", "71.00 ± 1.41 (n=2)"] and at_90[10:12] == ["80.00 ± 0.00 (n=2)", "missing"]


def _signin_run(name, keep, acc):
    return {"config": {"name": name, "sparsity": {"sign_in_weight_decay": keep}}, "test_acc": acc, "sparsity": 0.9}


def test_signin_weight_decay_table_applies_its_rule():
    # random: decay off better by 5 points, std 1 point -> beyond twice the std; off is better over all runs
    runs = [_signin_run("random_signin", True, a) for a in (0.80, 0.81, 0.82)] + [_signin_run("random_signin", False, a) for a in (0.85, 0.86, 0.87)]
    runs += [_signin_run("rigl_signin", True, a) for a in (0.84, 0.85, 0.86)] + [_signin_run("rigl_signin", False, a) for a in (0.84, 0.85, 0.86)]
    table = small_experiments.signin_weight_decay_table(runs, "cmd")
    assert "| random_signin | false | 3 | 86.00 ± 1.00 | 90.00 ± 0.00 | -5.00 points, beyond twice the larger seed std (1.00) |" in table
    assert "| rigl_signin | false | 3 | 85.00 ± 1.00 | 90.00 ± 0.00 | +0.00 points, within twice the larger seed std (1.00) |" in table
    assert "1 of 2 methods differ beyond" in table and "`true` 83.00 %, `false` 85.50 %" in table
    assert table.rstrip().endswith("Default: `sparsity.sign_in_weight_decay=false`.")
    # the same differences within the noise (std 4 points): decay stays on
    noisy = [_signin_run("random_signin", True, a) for a in (0.77, 0.81, 0.85)] + [_signin_run("random_signin", False, a) for a in (0.79, 0.83, 0.87)]
    table = small_experiments.signin_weight_decay_table(noisy, "cmd")
    assert "None of the 1 methods differs" in table and table.rstrip().endswith("Default: `sparsity.sign_in_weight_decay=true`.")


def test_an_empty_gains_table_says_why():
    from analysis import tables as T

    runs = [_dense_run("dense", seed, 0.9, 0.5) for seed in (0, 1)]  # baselines without their + HAM runs
    rows = T.gains(runs, "small")
    assert len(rows) == 2 and rows[1][0] == "none"
    assert rows[1][-1].startswith("empty: no target and run length has finished runs of both a baseline and its + HAM experiment")
    assert rows[1][-1].endswith("finished here: dense")


def test_table4_rows_say_whole_what_they_are_and_its_columns_the_paper_length_they_stand_for():
    """A reader of one row knows its method without the rows above it (`RiGL + HAM`, not a third `+ HAM`),
    and a small run's column names the paper's length it stands for (10 epochs for 100)."""
    from analysis import tables as T

    rows = T.table4([], "small")
    labels = [row[0] for row in rows[1:]]
    assert len(labels) == 13 == len(set(labels)) and not any(label.startswith("+") for label in labels)
    assert labels[6:9] == ["RiGL", "RiGL + Sign-In", "RiGL + HAM"] and labels[-1] == "STR + HAM"
    assert rows[0][1:4] == ["80 % 10 ep (paper: 100 ep)", "90 % 10 ep (paper: 100 ep)", "95 % 10 ep (paper: 100 ep)"]
    assert T.table4([], "imagenet")[0][1] == "80 % 100 ep"  # the paper's own setting: no translation
    assert T.table3([], "small")[0][1:3] == ["SGD 10 ep (paper: 100 ep)", "SGD 20 ep (paper: 200 ep)"]
