"""SIGUSR1/SIGTERM/SIGINT (Ctrl-C) stop a running train.py inside an epoch; the same command continues it,
bit-identical.

Real processes and real signals: one process, two processes started from SLURM's variables (the
signal reaches one rank only, as when a node is told first), and torchrun (its agent forwards the
SIGTERM it gets to the workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests import launch
from tests.e2e import REPO, SMALL, env, final_weights, read_history, run_train, torchrun_command, torchrun_env, torchrun_failure, train_command
from training.checkpoint import read_checkpoint
from training.preemption import EXIT_INTERRUPTED, EXIT_STOPPED, Interrupted, StopSignals

pytestmark = pytest.mark.slow
# the whole training set: 468 steps an epoch in one process (about 2 s), so that a signal sent when the
# first epoch is recorded lands inside the second; a learning rate that changes at every step (a
# one-epoch warm-up, then linear decay to 0), so that the history's lr of a resumed epoch can differ
SETUP = ["data.train_subset=null", "trainer.epochs=2", "sparsity=rigl", "sparsity.rigl_delta_t=50", "trainer.signal_check_every=1",
         "schedule.name=linear_ramp", "schedule.warmup_epochs=1"]
TIMINGS = ("images_per_s", "train_time_s", "wall_time_s")


def _strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMINGS} for h in history]


def _wait_for_first_epoch(run_dir: Path, processes: list[subprocess.Popen]) -> None:
    history = run_dir / "history.jsonl"
    deadline = time.time() + 300
    while not (history.exists() and history.read_text().count("\n") >= 1):
        assert time.time() < deadline and all(p.poll() is None for p in processes), "the run ended before its first epoch"
        time.sleep(0.01)


def _assert_stopped_inside_an_epoch(run_dir: Path, steps_per_epoch: int) -> dict:
    payload = read_checkpoint(run_dir / "checkpoint.pt")
    assert payload["partial"] is not None and 0 < payload["partial"]["step"] < steps_per_epoch, payload["partial"]
    assert payload["epoch"] == 1 and payload["global_step"] == steps_per_epoch * payload["epoch"] + payload["partial"]["step"]
    return payload


def _assert_equal_runs(a: Path, b: Path) -> None:
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert _strip(read_history(a)) == _strip(read_history(b))


def _stop_one_process(stopped: Path, sig: signal.Signals) -> dict:
    """Start the run of SETUP, send ``sig`` once its first epoch is recorded; check that it stopped
    inside the second epoch with its position saved, and return the checkpoint."""
    process = launch.start(train_command(stopped, *SETUP), cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_first_epoch(stopped, [process])
    process.send_signal(sig)
    _, err = process.communicate(timeout=300)
    interrupted = sig == signal.SIGINT
    assert process.returncode == (EXIT_INTERRUPTED if interrupted else EXIT_STOPPED), err[-3000:]
    how = "interrupted by Ctrl-C (SIGINT)" if interrupted else f"stopped by {sig.name}"
    assert f"{how} after step" in err and "the same command continues from there" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    payload = _assert_stopped_inside_an_epoch(stopped, 468)
    assert not list(stopped.glob("*.tmp")) and not (stopped / "run.lock").exists()
    return payload


def test_sigterm_stops_one_process_inside_an_epoch_with_its_position_saved(tmp_path):
    """What a preemption sends; the resume from the saved position does not depend on the signal
    (it is tested after SIGUSR1 below, and after torchrun's SIGTERM)."""
    _stop_one_process(tmp_path / "stopped", signal.SIGTERM)


def test_ctrl_c_stops_one_process_inside_an_epoch_with_its_position_saved_and_exit_code_130(tmp_path):
    """Ctrl-C is SIGTERM's stop: the step ends, its position is saved, one line says so; 130 as a shell
    reports an interrupt (not a KeyboardInterrupt traceback)."""
    _stop_one_process(tmp_path / "stopped", signal.SIGINT)


def test_a_second_ctrl_c_stops_at_once_without_saving_and_an_ignored_ctrl_c_stays_ignored():
    """The first Ctrl-C is recorded (the run saves at its next step); a second one before that exits at
    once with 130, and the handlers before ours are back. A process started to ignore Ctrl-C (a shell's
    background job) keeps ignoring it."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python sets it in a terminal
    try:
        stop = StopSignals()
        stop.install()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.signum == signal.SIGINT
            with pytest.raises(SystemExit) as second:
                os.kill(os.getpid(), signal.SIGINT)
            assert isinstance(second.value, Interrupted) and second.value.code == EXIT_INTERRUPTED == 130
        finally:
            stop.uninstall()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop = StopSignals()
        stop.install()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.signum == 0 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        finally:
            stop.uninstall()
    finally:
        signal.signal(signal.SIGINT, before)


def test_sigusr1_stops_one_process_inside_an_epoch_and_it_resumes_bit_identical(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert run_train(straight, *SETUP).returncode == 0
    payload = _stop_one_process(stopped, signal.SIGUSR1)
    resumed = run_train(stopped, *SETUP)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"step {payload['partial']['step']} of epoch {payload['epoch'] + 1}" in resumed.stdout
    _assert_equal_runs(straight, stopped)  # the histories too: the resumed epoch records the lr an uninterrupted one does
    # by hand: the mean rate over an epoch's 468 steps k = 0..467 is 0.05·mean(k/468) = 0.05·467/936 in the
    # warm-up, 0.05·(1 - 467/936) in the decay; the rate at the resume step is another value
    lrs = [h["lr"] for h in read_history(stopped)]
    assert lrs == pytest.approx([0.05 * 467 / 936, 0.05 * (1 - 467 / 936)], rel=1e-9)
    assert abs(lrs[1] - 0.05 * (1 - payload["partial"]["step"] / 468)) > 1e-4


def _srun_like(run_dir: Path, job_id: str) -> list[subprocess.Popen]:
    """Two train.py processes with only SLURM's variables, as `srun --ntasks=2` starts them."""
    procs = []
    for rank in range(2):
        slurm = dict(env(), SLURM_PROCID=str(rank), SLURM_NTASKS="2", SLURM_STEP_NUM_TASKS="2", SLURM_LOCALID=str(rank), SLURM_JOB_NODELIST="localhost",
                     SLURM_JOB_ID=job_id)
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            slurm.pop(key, None)
        procs.append(launch.start(train_command(run_dir, *SETUP), cwd=REPO, env=slurm, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def test_two_ranks_stop_at_the_same_step_when_one_is_signalled_and_resume_bit_identical(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    procs = _srun_like(straight, "5151")
    assert [p.wait(timeout=600) for p in procs] == [0, 0], procs[0].stderr.read()[-2000:]
    procs = _srun_like(stopped, "5252")
    _wait_for_first_epoch(stopped, procs)
    procs[1].send_signal(signal.SIGUSR1)  # rank 1 only: the ranks must still agree on the step
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [EXIT_STOPPED, EXIT_STOPPED], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert "stopped by SIGUSR1 after step" in outputs[0][1]  # reported by rank 0, which was not signalled itself
    _assert_stopped_inside_an_epoch(stopped, 234)  # 60000 / 2 ranks / 128
    procs = _srun_like(stopped, "5353")
    assert [p.wait(timeout=600) for p in procs] == [0, 0], procs[0].stderr.read()[-2000:]
    _assert_equal_runs(straight, stopped)


def test_torchrun_forwards_sigterm_and_both_ranks_save_one_position(tmp_path):
    command = torchrun_command(str(REPO / "train.py"), f"hydra.run.dir={tmp_path}", *SMALL, *SETUP)
    agent = subprocess.Popen(command, cwd=REPO, env=torchrun_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_first_epoch(tmp_path, [agent])
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=300)
    assert "stopped by SIGTERM after step" in err, err[-3000:]
    _assert_stopped_inside_an_epoch(tmp_path, 234)
    resumed = subprocess.run(command, cwd=REPO, env=torchrun_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, torchrun_failure(resumed.stderr)
    assert [h["epoch"] for h in read_history(tmp_path)] == [1, 2]
