"""Two-process gloo DDP on the CPU, launched with torchrun like a user would."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from tests import launch
from tests.compose import compose_config
from tests.e2e import REPO, SMALL, env, read_summary, run_train, snapshot, torchrun, torchrun_failure
from training.data import build_data
from training.models import build_model

pytestmark = pytest.mark.slow
DDP_SETUP = ["model=cnn", "data.train_subset=1024", "data.test_subset=1000", "trainer.batch_size=64", "trainer.epochs=2"]


def test_two_ranks_keep_identical_parameters_and_report_rank0s_test_accuracy(tmp_path):
    overrides = [o for o in SMALL if not o.startswith(("model=", "data.", "trainer.epochs"))] + DDP_SETUP
    result = torchrun(str(REPO / "tests" / "ddp_worker.py"), str(tmp_path), *overrides)
    assert result.returncode == 0, torchrun_failure(result.stderr)
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    summary = read_summary(tmp_path)
    assert summary["world_size"] == 2
    assert not (tmp_path / "summary.json.tmp").exists()

    # Rank 0's weights, evaluated here on the whole test subset in one process.
    cfg = compose_config(overrides)
    data = build_data(cfg.data, 64, 1000, 0)
    model = build_model(cfg.model, data.in_channels, data.image_size, data.num_classes)
    model.load_state_dict(rank0)
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in data.test)
    assert summary["test_acc"] == pytest.approx(correct / 1000, abs=1e-3)
    assert summary["test_acc"] > 0.2  # learned something (chance: 0.1)


def test_train_py_runs_under_torchrun_and_one_process_cannot_resume_its_checkpoint(tmp_path):
    result = torchrun(str(REPO / "train.py"), f"hydra.run.dir={tmp_path}", *SMALL)
    assert result.returncode == 0, torchrun_failure(result.stderr)
    summary = read_summary(tmp_path)
    assert summary["world_size"] == 2 and summary["epoch"] == 1
    assert result.stdout.count("done:") == 1  # only rank 0 reports
    before = snapshot(tmp_path)
    one = run_train(tmp_path)  # the same command in one process: its steps would count other steps
    assert one.returncode == 2, one.stderr[-2000:]
    assert "was written by a run with 2 process(es), this run has 1" in one.stderr and "--nproc_per_node=2" in one.stderr
    assert snapshot(tmp_path) == before


def srun_like(run_dir, *overrides: str, job_id: str = "4242") -> tuple[list[int], list[tuple[str, str]]]:
    """Two train.py processes started the way `srun --ntasks=2` would: only SLURM_* variables."""
    procs = []
    for rank in range(2):
        slurm = dict(env(), SLURM_PROCID=str(rank), SLURM_NTASKS="2", SLURM_STEP_NUM_TASKS="2", SLURM_LOCALID=str(rank),
                     SLURM_JOB_NODELIST="localhost", SLURM_JOB_ID=job_id)
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            slurm.pop(key, None)
        command = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run_dir}", *SMALL, *overrides]
        procs.append(launch.start(command, cwd=REPO, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    return [p.returncode for p in procs], outputs


def test_train_py_runs_ddp_from_slurm_variables(tmp_path):
    codes, outputs = srun_like(tmp_path)
    assert codes == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert read_summary(tmp_path)["world_size"] == 2
    assert "done:" in outputs[0][0] and "done:" not in outputs[1][0]  # only rank 0 reports


def test_divergence_stops_every_rank_at_the_same_step_with_exit_code_3(tmp_path):
    # A limit just above the untrained loss (1.006·ln 10 = 2.316): each rank's own batch loss crosses it
    # at different steps, their mean at one step that every rank sees.
    codes, outputs = srun_like(tmp_path, "trainer.divergence_factor=1.006", "ham=disabled", "optimizer.lr=1e-4", "trainer.batch_size=32", job_id="4343")
    assert codes == [3, 3], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    steps = [re.search(r"at step (\d+)", err).group(1) for _, err in outputs]
    assert steps[0] == steps[1] and all("Traceback" not in err for _, err in outputs)


def test_a_rank_that_aborts_is_reported_with_its_own_stack_not_only_torchruns_summary(tmp_path):
    """The failure message of the torchrun tests (``tests.e2e.torchrun_failure``): a rank killed by
    SIGABRT shows what it wrote and its Python stack, and the agent's account of which rank died."""
    script = tmp_path / "abort.py"
    script.write_text("import os, sys\n"
                      "def rank_one_aborts():\n"
                      "    print('rank 1 about to abort', file=sys.stderr, flush=True)\n"
                      "    os.abort()\n"
                      "if os.environ['RANK'] == '1':\n"
                      "    rank_one_aborts()\n")
    result = torchrun(str(script))
    message = torchrun_failure(result.stderr)
    assert result.returncode != 0
    assert "rank 1 about to abort" in message and "Fatal Python error: Aborted" in message
    assert "rank_one_aborts" in message  # the faulthandler's stack of the aborting rank
    assert "exitcode  : -6" in message and "Signal 6 (SIGABRT)" in message  # the agent's root cause
