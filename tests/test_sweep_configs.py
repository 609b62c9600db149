"""The sweep configs (``configs/sweep/*.yaml``): ``python train.py -m +sweep=<name>`` runs their
jobs, and ``scripts/small_experiments.py`` builds its multiruns from the same files."""

from __future__ import annotations

import sys

import yaml
from omegaconf import OmegaConf

from scripts import small_experiments
from tests import launch
from tests.e2e import REPO, env
from training.hydra_callbacks import longest_job_dirname, sweep_overrides


def test_train_runs_a_sweep_config_and_a_command_line_key_replaces_its_values(tmp_path):
    """+sweep=ham_weight_decay sweeps ham.keep_weight_decay over true,false for seeds 0-2; with
    trainer.seed=0 on the command line: two jobs, dense + HAM in the small setting."""
    command = [sys.executable, "train.py", "--multirun", "+sweep=ham_weight_decay", "trainer.seed=0", "trainer.epochs=1",
               "data.train_subset=500", "data.test_subset=500", "logger=disabled", "trainer.progress=false", "trainer.threads=1",
               f"hydra.sweep.dir={tmp_path}"]
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    configs = [yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("*/*/.hydra/config.yaml"))]
    assert len(configs) == 2
    assert sorted(c["ham"]["keep_weight_decay"] for c in configs) == [False, True]
    assert {(c["name"], c["ham"]["enabled"], c["trainer"]["seed"], c["data"]["name"]) for c in configs} == {
        ("dense_ham", True, 0, "fashion_mnist")}
    assert all("sweep=" not in p.parent.name for p in tmp_path.glob("*/*/.hydra"))  # the sweep's name is no part of a job's


def test_the_sweeps_of_small_experiments_are_the_sweep_configs_split_for_the_workers():
    # ham-grid by hand: the dense baseline (3 seeds) and one multirun per alpha of 3 betas x 3 seeds
    sweep = small_experiments.SWEEPS["ham-grid"]
    assert sweep["overrides"][0] == ["+sweep=ham_grid_baseline"]
    assert [o[1] for o in sweep["overrides"][1:]] == [f"ham.alpha={a}" for a in (5, 10, 20, 50, 100, 200)]
    assert [small_experiments.job_count(o) for o in sweep["overrides"]] == [3] + [9] * 6
    assert sweep["dir"] == "multirun/ham_grid"
    # mirror-presets: PILoT 7 alphas x 2 growths x 3 targets, spred 7 penalties x 3 targets
    assert [small_experiments.job_count(o) for o in small_experiments.SWEEPS["mirror-presets"]["overrides"]] == [42, 21]
    command = small_experiments.sweep_commands(sweep, [])[1]
    assert command[1:4] == ["train.py", "--multirun", "+sweep=ham_grid"] and "ham.alpha=5" in command


def test_a_sweep_config_counts_in_the_job_names_and_the_local_launchers_job_count():
    config = OmegaConf.create({"hydra": {
        "sweeper": {"params": {"+experiment": "dense_ham", "ham.alpha": "5,10", "ham.beta": "0,1e-3,1e-2"}},
        "overrides": {"task": ["+sweep=x", "ham.alpha=20,300"]},
        "job": {"config": {"override_dirname": {"kv_sep": "=", "item_sep": ",", "exclude_keys": ["experiment", "sweep"]}}}}})
    assert sweep_overrides(config)[-1] == "ham.alpha=20,300"
    # by hand: the command line's alpha replaces the config's; experiment and sweep are excluded; the
    # sweeper writes 1e-3 as 0.001, the longest of beta's values
    assert longest_job_dirname(config) == "ham.alpha=300,ham.beta=0.001"


def test_the_local_launchers_jobs_share_the_cores_counting_the_sweep_configs_keys(monkeypatch):
    """12 cores, 2 x 3 = 6 jobs started together (alpha from the command line, beta from the sweep
    config): 2 threads each (counting only the command line would give 12 // 2 = 6)."""
    from training.hydra_callbacks import SWEEP_THREADS_VARIABLE, LocalSweepThreads

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(12)))
    monkeypatch.delenv(SWEEP_THREADS_VARIABLE, raising=False)
    config = OmegaConf.create({"hydra": {
        "launcher": {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"},
        "sweeper": {"params": {"+experiment": "dense_ham", "ham.alpha": "5,10", "ham.beta": "0,1e-3,1e-2"}},
        "overrides": {"task": ["+sweep=x", "ham.alpha=20,300"]}}})
    LocalSweepThreads().on_multirun_start(config)
    import os

    assert os.environ[SWEEP_THREADS_VARIABLE] == "2"
