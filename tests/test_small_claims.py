"""scripts/small_claims.py: runs that two experiments share are the same jobs (trained once), the
α the configs give each model is the rule's choice on the committed records, and the committed
tables are what the scripts build from the committed records."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import runs as R
from analysis.alpha_rule import choose_alpha
from scripts import small_claims as C

REPO = Path(__file__).resolve().parent.parent


def jobs(overrides: list[list[str]]) -> set[frozenset[str]]:
    """Every job of the multiruns, as the set of its ``key=value`` overrides (experiment included)."""
    return {frozenset(job) for multirun in overrides for job in C.expand(multirun)}


def test_the_experiments_share_their_common_runs_as_identical_jobs():
    grid = jobs(C.alpha_rule_overrides())
    assert len(grid) == 2 * (2 + 2 * len(C.ALPHA_GRID)) * 3  # two models; without HAM and each α; dense and random; 3 seeds
    alpha = C.configured_alpha("cnn_small")
    oneshot = jobs(C.oneshot_bn_overrides())
    first_seeds = {j for j in oneshot if "trainer.seed=3" not in j and "trainer.seed=4" not in j}
    assert len(oneshot) == 10 and len(first_seeds) == 6 and first_seeds <= grid  # seeds 0-2 are the grid's runs at the chosen α
    assert any(f"ham.alpha={alpha:g}" in j for j in first_seeds)
    signin = jobs(C.signin_period_overrides())
    assert len(signin) == 2 * (len(C.SIGN_IN_PERIODS) + 2) * 3  # two models; each period and the two weight-decay controls; 3 seeds
    assert not signin & grid  # the random PaI reference without HAM is the grid's, not trained again
    mirror = jobs(C.mirror_controls_overrides())
    random_10 = {j for j in mirror if "+experiment=random" in j and not any(o.startswith("trainer.epochs") for o in j)}
    assert not random_10  # random PaI at 10 epochs is the grid's
    baseline = {j for j in grid if "+experiment=random" in j and "model=lenet300_100" in j}
    assert len(baseline) == 3


def test_the_configs_give_each_model_the_alpha_the_rule_chooses_on_the_committed_records():
    runs = R.from_disk([C.RECORDS])
    for model in C.SMALL_MODELS:
        assert C.configured_alpha(model) == choose_alpha(runs, model).alpha, f"configs/ham/{C.HAM_CONFIGS[model]}.yaml"


@pytest.mark.parametrize("name", list(C.EXPERIMENTS))
def test_each_committed_table_is_what_its_function_builds_from_the_committed_records(name):
    _, table, output = C.EXPERIMENTS[name]
    assert table(R.from_disk([C.RECORDS]), f"python scripts/small_claims.py {name}") == (REPO / output).read_text()


def test_the_committed_verdicts_are_what_the_verdict_function_gives_on_the_committed_records():
    text, records = C.verdict_table("python scripts/small_claims.py verdicts")
    assert text == (REPO / "results" / "compare" / "claims_small.md").read_text()
    assert all(r["verdict"] != "not run" for r in records)  # every claim was tested
    readme = (REPO / "README.md").read_text()
    assert text.split("\n", 2)[2].strip() in readme  # the README's results open with it


def test_a_multirun_whose_jobs_all_finished_with_their_configuration_is_left_out(tmp_path, capsys):
    import json

    from tests.compose import prepare
    from training.config import compose_config
    from training.records import recorded

    def finished(overrides: list[str], name: str) -> None:
        cfg = compose_config([*overrides, *C.COMMON])
        prepare(cfg)
        run = tmp_path / cfg.name / name
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"config": recorded(cfg), "test_acc": 0.5, "epoch": cfg.trainer.epochs}))

    finished(["+experiment=random", *C.at_90("lenet300_100", "0"), "ham.alpha=7"], "a")  # HAM off: its α is no part of the run
    finished(["+experiment=random_ham", *C.at_90("lenet300_100", "0")], "b")
    both_seeds = ["+experiment=random", *C.at_90("lenet300_100", "0,1")]
    no_records = tmp_path / "no-records"
    assert C.to_train([["+experiment=random", *C.at_90("lenet300_100", "0")], both_seeds], tmp_path, no_records) == [both_seeds]
    assert "finished: +experiment=random model=lenet300_100 sparsity.target=0.9 trainer.seed=0" in capsys.readouterr().out
    other_alpha = ["+experiment=random_ham", "ham.alpha=7", *C.at_90("lenet300_100", "0")]
    assert C.to_train([other_alpha], tmp_path, no_records) == [other_alpha]  # with HAM on, another α is another run


def test_a_multirun_archived_in_the_committed_records_is_left_out_without_a_sweep_directory(tmp_path):
    trained = ["+experiment=random", *C.at_90("lenet300_100")]  # the α grid's baseline, seeds 0-2
    assert C.to_train([trained], tmp_path / "gone") == []
    assert C.to_train([[*trained[:-1], "trainer.seed=0,1,2,3,4,5,6,7,8,9"]], tmp_path / "gone") != []


def test_a_cell_whose_runs_differ_in_more_than_the_seed_is_refused():
    runs = R.from_disk([C.RECORDS])
    random = {"name": "random", "model__name": "lenet300_100", "sparsity__target": 0.9, "ham__enabled": False}
    # the committed records hold random PaI at 90 % with 10, 20 and 40 epochs and without weight decay
    with pytest.raises(C.MixedCellError, match=r"trainer\.epochs=.*add the differing keys"):
        C._matching(runs, **random)
    assert C.setting_recipe() == {"trainer__epochs": 10, "optimizer__weight_decay": 5e-4}  # configs/setting/small.yaml
    assert len(C._matching(runs, **random, **C.setting_recipe())) == 3
