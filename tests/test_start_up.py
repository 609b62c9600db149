"""Start-up edges that used to fail silently or hang: W&B online without credentials, a SLURM
batch step that promises several tasks, a rendezvous some ranks never reach (issue 16, items 5-6)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests import launch
from tests.e2e import REPO, env, free_port, train_command

pytestmark = pytest.mark.slow


def no_credentials(home: Path) -> dict[str, str]:
    """The real wandb client with no login: an empty home (no ~/.netrc), no key, no WANDB_MODE."""
    home.mkdir(exist_ok=True)
    out = dict(env(), HOME=str(home))
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "NETRC"):
        out.pop(key, None)
    return out


def test_online_logging_without_credentials_stops_before_training(tmp_path):
    run_dir = tmp_path / "run"
    result = launch.run(train_command(run_dir, "logger=online"), cwd=REPO, env=no_credentials(tmp_path / "home"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "wandb login" in errors[0] and "WANDB_API_KEY" in errors[0] and "logger=offline" in errors[0]
    assert not run_dir.exists() or not any(run_dir.iterdir())  # nothing trained, nothing written


def test_online_logging_without_credentials_fails_every_sweep_job_visibly(tmp_path):
    sweep = tmp_path / "sweep"
    command = train_command(tmp_path / "unused", "logger=online", "trainer.seed=0,1", f"hydra.sweep.dir={sweep}") + ["--multirun"]
    result = launch.run(command, cwd=REPO, env=no_credentials(tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    failed = sorted(sweep.rglob("failed.txt"))
    assert len(failed) == 2 and all("wandb login" in f.read_text() for f in failed)
    assert all("error: logger.wandb.mode=online needs W&B credentials" in (f.parent / "train.log").read_text() for f in failed)
    assert "error: 2 job(s) of the sweep" in result.stderr
    assert not list(sweep.rglob("summary.json")) and not list(sweep.rglob("checkpoint.pt"))


def test_online_logging_with_a_netrc_entry_passes_the_check(tmp_path, monkeypatch):
    """The check reads what ``wandb login`` writes (a ~/.netrc entry for api.wandb.ai)."""
    from training.records import wandb_credentials_found

    for key in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "NETRC", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not wandb_credentials_found()
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "a" * 40 + "\n")
    netrc.chmod(0o600)
    assert wandb_credentials_found()
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "b" * 40)
    assert wandb_credentials_found()


def test_a_batch_step_with_several_tasks_stops_with_the_srun_command(tmp_path):
    """The variables an sbatch batch step exports (no SLURM_STEP_*): it used to wait forever."""
    batch = dict(env(), SLURM_NTASKS="2", SLURM_NPROCS="2", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_JOB_ID="7",
                 SLURM_JOB_NODELIST="localhost")
    start = time.monotonic()
    result = launch.run(train_command(tmp_path / "run"), cwd=REPO, env=batch, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and time.monotonic() - start < 60, result.stderr[-3000:]
    assert "not started by srun" in result.stderr and "srun python train.py" in result.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize("started", [[0], [1]], ids=["only-rank-0", "only-rank-1"])
def test_a_rendezvous_that_some_ranks_never_reach_times_out_naming_them(tmp_path, started):
    port = free_port()
    processes = []
    for rank in started:
        variables = dict(env(), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        processes.append(launch.start(train_command(tmp_path / "run", "trainer.rendezvous_timeout_s=3"), cwd=REPO, env=variables,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr[-3000:]
        assert f"MASTER_ADDR=127.0.0.1 MASTER_PORT={port}" in stderr and "trainer.rendezvous_timeout_s=3 s" in stderr
        if started == [0]:
            assert "rank(s) 1 of 2 did not arrive" in stderr
        else:
            assert "rank 1 of 2 could not reach the master's store" in stderr
