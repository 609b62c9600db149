"""What a run records about itself: the learning rate of each epoch, ``train.log``, the progress
bar's default, and the configuration as it ran (issue 16, items 8-10)."""

from __future__ import annotations

import sys

import pytest
import yaml

from tests import launch
from tests.e2e import REPO, SMALL, env, read_history, run_train, train_command

pytestmark = pytest.mark.slow


def test_each_epoch_records_the_mean_rate_its_steps_trained_with(tmp_path):
    """Warm-up over 2 epochs of 4 steps, then a linear ramp to 0 over the third: the multiplier
    of step s is s/8 during the warm-up and 1 - (s/4 - 2) after it. Means derived by hand:
    epoch 1 (s = 0..3) 6/32, epoch 2 (s = 4..7) 22/32, epoch 3 (1, 0.75, 0.5, 0.25) 0.625."""
    result = run_train(tmp_path, "schedule=linear_ramp", "schedule.warmup_epochs=2", "trainer.epochs=3",
                       "trainer.max_steps_per_epoch=4", "optimizer.lr=0.1")
    assert result.returncode == 0, result.stderr[-3000:]
    lrs = [h["lr"] for h in read_history(tmp_path)]
    assert lrs == pytest.approx([0.1 * 6 / 32, 0.1 * 22 / 32, 0.1 * 0.625], rel=1e-12)


def test_train_log_holds_the_epoch_lines_and_errors_without_progress_frames(tmp_path):
    result = run_train(tmp_path, "trainer.epochs=2", "trainer.max_steps_per_epoch=3", "trainer.progress=null")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "train.log").read_text()
    assert "it/s" not in log and "it/s" not in result.stderr  # not a terminal: no progress bar by default
    for line in result.stdout.splitlines():
        if line.startswith(("epoch ", "done:")):
            assert line in log
    # a second command in the same directory appends; its refusal (a checkpoint of another config) is logged too
    refused = run_train(tmp_path, "trainer.epochs=2", "trainer.max_steps_per_epoch=3", "optimizer.lr=0.2")
    assert refused.returncode == 2
    assert (tmp_path / "train.log").read_text() == log, "a refused run must leave the directory as it was"
    diverged = run_train(tmp_path, "trainer.epochs=3", "trainer.max_steps_per_epoch=3", "trainer.resume=never", "hydra.run.dir=" + str(tmp_path / "d"),
                         "optimizer.lr=1e6", "ham=disabled")
    assert diverged.returncode == 3
    assert "error: training diverged" in (tmp_path / "d" / "train.log").read_text()


def test_the_progress_bar_is_on_by_default_on_a_terminal(tmp_path):
    """Under a pseudo-terminal (``script``) the bar is drawn by default, and not into train.log."""
    command = " ".join(train_command(tmp_path, "trainer.epochs=1", "trainer.progress=null"))
    terminal = f"stty cols 120 rows 40; {command}"  # script's terminal has no size: give it one
    result = launch.run(["script", "-qec", terminal, "/dev/null"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "epoch 1/1:" in result.stdout and "it/s" in result.stdout  # tqdm's frames
    log = (tmp_path / "train.log").read_text()
    assert "epoch 1: train_loss=" in log and "it/s" not in log and b"\r" not in (tmp_path / "train.log").read_bytes()


@pytest.mark.parametrize("experiment, expected", [("str_ham", 2.72e-3), ("str", 4.44e-3)])  # calibration/small.yaml
def test_cfg_job_shows_the_preset_that_the_run_uses(tmp_path, experiment, expected):
    """``--cfg job`` used to print ``str_weight_decay: null`` where the run used the setting's preset."""
    from tests.compose import compose_config, prepare

    overrides = [f"+experiment={experiment}", "setting=small", "sparsity.target=0.9"]
    cfg = compose_config(overrides)
    prepare(cfg)  # what the run uses: the preset for (str, 0.9, ham on/off)
    used = cfg.sparsity.str_weight_decay
    assert used == expected
    shown = launch.run([sys.executable, "train.py", *overrides, "--cfg", "job"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["sparsity"]["str_weight_decay"] == used
    ran = run_train(tmp_path, *overrides, "trainer.max_steps_per_epoch=2")  # and the config saved beside the run
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert yaml.safe_load((tmp_path / ".hydra" / "config.yaml").read_text())["sparsity"]["str_weight_decay"] == used


def test_no_text_from_the_environment_reaches_a_file_that_train_archive_or_compare_writes(tmp_path, monkeypatch):
    """A token in the environment, used through ${oc.env:...} (in a W&B label, a tag and a path), by a
    sweep with a finished and a failed job, with W&B offline: none of the files train.py writes, nor
    the archived records, nor compare's tables hold it; the records keep the interpolation as written.
    A seed read from the environment is a number and is recorded as the number the run used, by the
    run; whoever reads a run's ``.hydra/config.yaml`` later (here with the same variables set, as on
    the machine that ran it) resolves nothing."""
    import json
    import os

    from analysis.runs import archive

    token = "tok-" + os.urandom(12).hex()
    sweep, records, tables = tmp_path / "sweep", tmp_path / "records", tmp_path / "tables"
    secret_env = dict(env(), HAM_TEST_TOKEN=token, HAM_TEST_SEED="3", WANDB_MODE="offline")
    monkeypatch.setenv("HAM_TEST_TOKEN", token)  # archive() runs in this process
    monkeypatch.setenv("HAM_TEST_SEED", "3")
    command = [sys.executable, str(REPO / "train.py"), "-m", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${name}/job${hydra:job.num}", *SMALL, "logger=offline",
               "trainer.max_steps_per_epoch=4", "optimizer.lr=0.05,-1", "trainer.seed=${oc.env:HAM_TEST_SEED}",
               "logger.wandb.group=${oc.env:HAM_TEST_TOKEN}", "logger.wandb.tags=[t-${oc.env:HAM_TEST_TOKEN}]",
               "sparsity.calibration=${oc.env:HAM_TEST_TOKEN}.yaml"]
    result = launch.run(command, cwd=REPO, env=secret_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "1 job(s) of the sweep" in result.stderr, result.stderr[-3000:]  # the lr=-1 job failed
    assert archive(sweep, records) == 2
    compared = launch.run([sys.executable, str(REPO / "scripts" / "compare.py"), str(sweep), str(records), "--setting", "small",
                               "--output-dir", str(tables)], cwd=REPO, env=secret_env, capture_output=True, text=True, timeout=300)
    assert compared.returncode == 0, compared.stderr[-3000:]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.match("*/wandb/offline-run-*/*.wandb") for p in written) and len(list(tables.iterdir())) >= 2
    assert [p for p in written if token.encode() in p.read_bytes() or token in str(p)] == []
    kept = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]
    assert sorted(bool(r.get("failed")) for r in kept) == [False, True]
    for record in kept:
        assert record["config"]["logger"]["wandb"]["group"] == "${oc.env:HAM_TEST_TOKEN}"
        assert record["config"]["sparsity"]["calibration"] == "${oc.env:HAM_TEST_TOKEN}.yaml"
        seed = "${oc.env:HAM_TEST_SEED}" if record.get("failed") else 3  # the failed job's config is read from its .hydra/config.yaml
        assert record["config"]["trainer"]["seed"] == seed and record["config"]["sparsity"]["seed"] == seed
