"""Run ``train.py`` as a user would, in its own process, on small Fashion-MNIST subsets (started by
:mod:`tests.launch`: from the tests' fork server, which has torch and Hydra imported already)."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from tests import launch
from training.checkpoint import read_checkpoint

REPO = Path(__file__).resolve().parent.parent
#: LeNet-300-100 on 2048 training images: about a second an epoch on 2 cores.
SMALL = [
    "model=lenet300_100", "data.train_subset=2048", "data.test_subset=1000", "schedule=constant",
    "trainer.epochs=1", "trainer.progress=false", "logger=disabled", "trainer.threads=1",
]


def free_port() -> int:
    """A TCP port nothing listens on now (tests run in parallel: no fixed ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


env = launch.environment


#: a line torchrun's agent logs itself (glog style: level, date, time, pid, its source file)
AGENT_LINE = re.compile(r"^[IWE]\d{4} [\d:.]+ +\d+ \S*/torch/distributed/\S+\] .*\n?", re.M)


def torchrun(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2`` on a free port, as a user types it (a fresh interpreter, not
    the fork server)."""
    return subprocess.run(torchrun_command(*args), cwd=REPO, env=torchrun_env(), capture_output=True, text=True, timeout=timeout)


def torchrun_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}", *args]


def torchrun_env() -> dict[str, str]:
    """:func:`env` with ``PYTHONFAULTHANDLER``: a rank that dies by a signal (SIGABRT, SIGSEGV) prints
    every thread's Python stack first."""
    return dict(env(), PYTHONFAULTHANDLER="1")


def torchrun_failure(stderr: str) -> str:
    """A failed torchrun's stderr for an assertion message: what the ranks wrote (up to the agent's
    report, without the agent's own log lines), then the agent's "Root Cause" (which rank, which
    exit code). The report alone, the last 2000 characters, hid why a rank had aborted."""
    report = stderr.find("Traceback (most recent call last):\n  File \"<frozen runpy>\"")
    ranks = AGENT_LINE.sub("", stderr[:report] if report >= 0 else stderr)
    root = stderr.rfind("Root Cause")
    return f"{ranks[-5000:]}\n[torchrun] {stderr[root:] if root >= 0 else stderr[-1500:]}"


def train_command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run_dir}", *SMALL, *overrides]


def run_train(run_dir: Path, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return launch.run(train_command(run_dir, *overrides), cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout)


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def read_history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file under ``run_dir`` and its content."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run_dir / "checkpoint.pt")["model"]


def kill_after_first_epoch(run_dir: Path, overrides: list[str], epochs: int, extra_env: dict[str, str] | None = None) -> None:
    """Start train.py, SIGKILL it once its first epoch is recorded, check it was cut mid-run."""
    process = launch.start(train_command(run_dir, *overrides), cwd=REPO, env=dict(env(), **(extra_env or {})),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run_dir / "history.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (history.exists() and history.read_text().count("\n") >= 1):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 1 <= history.read_text().count("\n") < epochs, "the run was not interrupted in the middle"


def assert_resume_is_bit_identical(tmp_path: Path, overrides: list[str], epochs: int,
                                   while_killed: Callable[[Path], None] | None = None) -> list[dict]:
    """Run straight; run again, SIGKILL it after its first epoch (then call ``while_killed`` with its
    directory) and resume it; the final weights and the history (timings aside) must be equal.
    Returns the straight run's history."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    result = run_train(straight, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    kill_after_first_epoch(interrupted, overrides, epochs)
    if while_killed is not None:
        while_killed(interrupted)
    resumed = run_train(interrupted, *overrides)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    a, b = final_weights(straight), final_weights(interrupted)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda h: {k: v for k, v in h.items() if k not in ("images_per_s", "train_time_s", "wall_time_s")}
    assert [strip(h) for h in read_history(straight)] == [strip(h) for h in read_history(interrupted)]
    return read_history(straight)


@contextlib.contextmanager
def tmpfs(mount_point, options: str):
    """A real tmpfs mounted at ``mount_point`` (a full or read-only disk); needs root (CI runs as root)."""
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mount_point
    finally:
        # lazy: a file still open or mapped (an FFCV loader's memory map) would keep the mount busy and left behind
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
