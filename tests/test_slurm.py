"""A real one-node SLURM (scripts/slurm_local.sh; needs root and slurm-wlm + munge, which
scripts/install_system_deps.sh installs): a Hydra sweep submitted with ``hydra/launcher=slurm`` is
signalled the way SLURM warns before a time-out (SIGUSR2, what submitit asks for), stops inside an
epoch, is requeued by submitit, resumes from that step and ends bit-identical to a run never stopped."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import torch

from tests import launch
from tests.e2e import REPO, env, final_weights, read_history

pytestmark = pytest.mark.slow
RUN = ["model=lenet300_100", "schedule=constant", "trainer.epochs=4", "trainer.threads=1", "logger=disabled", "trainer.progress=false"]
LOCAL = ["hydra/launcher=slurm_cpu", "hydra.launcher.partition=local"]  # what the README shows for a CPU partition


SLURM_LOCAL = ["bash", str(REPO / "scripts" / "slurm_local.sh")]
DAEMONS = ("munged", "slurmctld", "slurmd")


def _alive(pid: int, name: str) -> bool:
    comm = Path(f"/proc/{pid}/comm")
    try:
        return comm.read_text().strip() == name
    except OSError:
        return False


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[Path]:
    """SLURM for the module's tests, started with a run directory of its own (not the machine-wide
    default that another checkout's ``stop`` would read) and stopped when they end: the daemons this
    start started (the PID files it wrote) are gone afterwards; ones that ran before are left alone."""
    if shutil.which("sbatch") is None:
        pytest.fail("SLURM is not installed: run scripts/install_system_deps.sh as root (apt-get install slurm-wlm munge)")
    run = tmp_path_factory.mktemp("slurm_run")
    local = {**env(), "SLURM_LOCAL_RUN_DIR": str(run)}
    before = {name: _running(name) for name in DAEMONS}
    started = subprocess.run([*SLURM_LOCAL, "start"], env=local, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    yield run
    stopped = subprocess.run([*SLURM_LOCAL, "stop"], env=local, capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    deadline = time.time() + 10  # the daemons' own children (slurmctld's slurmscriptd) end just after them
    while (left := {name: _running(name) - before[name] for name in DAEMONS}) and any(left.values()) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(left.values()), f"processes that the tests' SLURM started still run after stop: {left}"


def _running(name: str) -> set[int]:
    """The PIDs of the processes named ``name`` (a daemon's children that carry its name too)."""
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def test_a_stop_with_another_run_directory_leaves_the_daemons_the_tests_started(slurm, tmp_path):
    """Another checkout's ``start`` (SLURM already up: it starts nothing) and ``stop`` with its own run
    directory: it writes no PID file and signals nothing, so the tests' SLURM still schedules."""
    ours = {name: int((slurm / f"{name}.pid").read_text()) for name in DAEMONS if (slurm / f"{name}.pid").exists()}
    other = {**env(), "SLURM_LOCAL_RUN_DIR": str(tmp_path / "other")}
    assert subprocess.run([*SLURM_LOCAL, "start"], env=other, capture_output=True, text=True, timeout=120).returncode == 0
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["daemon"]  # it started nothing
    assert subprocess.run([*SLURM_LOCAL, "stop"], env=other, capture_output=True, text=True, timeout=120).returncode == 0
    assert all(_alive(pid, name) for name, pid in ours.items())
    assert subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=30).returncode == 0


def test_a_signalled_slurm_job_is_requeued_and_resumes_bit_identical(slurm, tmp_path):
    straight = tmp_path / "straight"  # the same run, never stopped, outside SLURM (beside the job: it waits 10 s to be requeued)
    uninterrupted = launch.start([sys.executable, str(REPO / "train.py"), f"hydra.run.dir={straight}", *RUN], cwd=REPO, env=env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sweep = tmp_path / "sweep"
    command = [sys.executable, str(REPO / "train.py"), "--multirun", *LOCAL, f"hydra.sweep.dir={sweep}", *RUN]
    launcher = launch.start(command, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    history = None
    while history is None or not history.exists() or history.read_text().count("\n") < 1:
        assert time.time() < deadline and launcher.poll() is None, "the SLURM job did not start training"
        found = list(sweep.glob("*/*/history.jsonl"))
        history = found[0] if found else None
        time.sleep(0.1)
    job = next(sweep.glob(".submitit/*/*_submitted.pkl")).parent.name
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    output, _ = launcher.communicate(timeout=300)  # submitit requeues it; it starts again after 10 s (slurm_local.sh)
    assert launcher.returncode == 0, output[-3000:]
    _, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err[-2000:]
    run_dir = history.parent
    logs = "".join(p.read_text() for p in sweep.glob(f".submitit/{job}/*_log.*"))
    assert "stopped by SIGUSR2 after step" in logs and "Caught signal SIGUSR2" in logs  # ours, then submitit's
    assert "step" in logs.split("resumed from", 1)[1].splitlines()[0]  # resumed inside the epoch
    a, b = final_weights(straight), final_weights(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda h: {k: v for k, v in h.items() if k not in ("images_per_s", "train_time_s", "wall_time_s")}  # noqa: E731
    assert [strip(h) for h in read_history(straight)] == [strip(h) for h in read_history(run_dir)]
    # train.log's header names the job as a train.py command with its overrides, not submitit's _submit.py
    headers = [line for line in (run_dir / "train.log").read_text().splitlines() if line.startswith("=== ")]
    assert len(headers) == 2  # the first start and the requeued one
    command = headers[0].split(": ", 1)[1]
    assert command.startswith(f"{REPO / 'train.py'} ") and "trainer.epochs=4" in command and "(a job started by" in command


def test_a_submission_the_cluster_refuses_is_one_sentence_naming_the_launcher_keys(slurm, tmp_path):
    """The ImageNet defaults ask for 8 GPUs and 480 GB: the local CPU partition refuses them."""
    command = [sys.executable, str(REPO / "train.py"), "--multirun", "hydra/launcher=slurm", "hydra.launcher.partition=local",
               "+experiment=rigl_ham", "setting=small", f"hydra.sweep.dir={tmp_path}"]
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "SLURM refused the submission (sbatch: error:" in error[0]
    assert "hydra.launcher.gpus_per_node=8" in error[0] and "hydra/launcher=slurm_cpu" in error[0]


def test_stop_stops_only_the_daemons_whose_pid_files_it_wrote(tmp_path):
    """Decoys named like the daemons: the one in the PID file stops; one that is not, and a process of
    another name at a recorded PID, keep running (pkill -x would have stopped a site's SLURM)."""
    fake = tmp_path / "bin" / "slurmd"
    fake.parent.mkdir()
    shutil.copy(shutil.which("sleep"), fake)
    ours, site = (subprocess.Popen([str(fake), "300"]) for _ in range(2))
    other = subprocess.Popen(["sleep", "300"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "slurmd.pid").write_text(f"{ours.pid}\n")
    (run / "munged.pid").write_text(f"{other.pid}\n")  # a PID that another process has now
    # reaped as soon as it ends, as a real daemon is by init: a zombie child of this process would answer
    # the script's `kill -0` until its 10 s wait ran out
    reaper = threading.Thread(target=ours.wait)
    reaper.start()
    try:
        result = subprocess.run(["bash", str(REPO / "scripts" / "slurm_local.sh"), "stop"], env={**env(), "SLURM_LOCAL_RUN_DIR": str(run)},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        reaper.join(timeout=10)
        assert ours.returncode is not None
        assert site.poll() is None and other.poll() is None
        assert not list(run.iterdir())  # its PID files are gone
    finally:
        for process in (ours, site, other):
            process.kill()


def test_train_py_in_the_batch_step_of_a_two_task_job_stops_with_the_srun_command(slurm, tmp_path):
    """``sbatch --ntasks=2`` with ``python train.py`` in the script itself (not under srun): the batch
    step exports SLURM_NTASKS=2 but starts one process. It used to wait forever for rank 1."""
    out = tmp_path / "job.out"
    script = tmp_path / "job.sh"
    script.write_text(
        f"#!/bin/bash\n#SBATCH --ntasks=2\n#SBATCH --partition=local\n#SBATCH --output={out}\ncd {REPO}\n"
        f"{sys.executable} train.py hydra.run.dir={tmp_path / 'run'} {' '.join(RUN)} trainer.epochs=1\necho exit=$?\n"
    )
    subprocess.run(["sbatch", str(script)], cwd=tmp_path, env=env(), check=True, capture_output=True, timeout=60)
    deadline = time.time() + 180
    while not (out.exists() and "exit=" in out.read_text()):
        assert time.time() < deadline, "the batch job did not end"
        time.sleep(0.5)
    text = out.read_text()
    assert "exit=2" in text and "not started by srun" in text and "`srun python train.py" in text, text[-3000:]


def test_paper_tables_dry_run_lists_the_slurm_commands(tmp_path):
    result = launch.run([sys.executable, str(REPO / "scripts" / "paper_tables.py"), "table3", "--dry-run", "--launcher", "slurm",
                         "--sweep-dir", str(tmp_path)], cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("hydra/launcher=slurm") == 8 and not Path(tmp_path / "dense").exists()


def test_the_slurm_launcher_without_slurms_commands_says_so_in_one_sentence(tmp_path):
    """A machine without sbatch and srun (submitit: RuntimeError: Could not detect "srun"): one sentence
    naming them and hydra/launcher=local, exit code 2, no job started."""
    command = [sys.executable, str(REPO / "train.py"), "--multirun", *LOCAL, f"hydra.sweep.dir={tmp_path / 'sweep'}", *RUN]
    result = launch.run(command, cwd=REPO, env={**env(), "PATH": str(tmp_path / "no_bin")}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "SLURM's commands (sbatch, srun) are not on PATH here" in result.stderr and "hydra/launcher=local" in result.stderr
    assert not list((tmp_path / "sweep").glob("*/*/history.jsonl"))
