"""Run training commands: :func:`run_command` (the one place a script starts ``train.py``),
:func:`check_sweep_exit` (what a multirun's exit code means), and :func:`run_steps`, the worker
pool of ``scripts/small_suite.py`` and ``scripts/small_experiments.py`` (a few at a time, most
expensive first, each with its own log); ``scripts/paper_tables.py`` launches one after another."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from training.records import SUMMARY_NAME
from training.rundir import FAILED_NAME

REPO = Path(__file__).resolve().parent.parent
#: a multirun's exit code when some of its jobs failed: the sweep lists them itself
#: (``training.hydra_callbacks.SweepReport``) and they are kept as failed records, not an error here
SOME_JOBS_FAILED = 1


def run_command(command: list[str], log: Path | None = None) -> int:
    """Run ``command`` in the repository (output to ``log`` when given) and return its exit code."""
    if log is None:
        return subprocess.run(command, cwd=REPO).returncode
    with log.open("w") as out:
        return subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode


def sweep_failed(returncode: int | None) -> bool:
    """Whether a multirun stopped (not run, or an exit code other than 0 and :data:`SOME_JOBS_FAILED`)."""
    return returncode not in (0, SOME_JOBS_FAILED)


def check_sweep_exit(returncode: int | None, command: list[str]) -> None:
    """Stop the script when a multirun stopped (see :func:`sweep_failed`), naming the command."""
    if sweep_failed(returncode):
        raise SystemExit(f"the sweep stopped with exit code {returncode}: {shlex.join(command)}")


@dataclass
class Step:
    """One command, its cost estimate (in 10-epoch LeNet-300-100 runs) and, once run, its outcome."""

    name: str
    command: list[str]
    cost: float
    seconds: float | None = None
    returncode: int | None = None


def run_steps(steps: list[Step], workers: int, logs: Path, expected: list[Path]) -> None:
    """Run the steps, most expensive first, ``workers`` at a time; every 30 s print how many of the
    ``expected`` run directories have ended (a ``summary.json`` or a ``failed.txt``), or, with none
    expected, how many of the steps."""
    logs.mkdir(parents=True, exist_ok=True)
    queue = sorted(steps, key=lambda s: -s.cost)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                step = queue.pop(0)
            log = logs / (step.name.replace(" ", "_").replace("/", "-")[:120] + ".log")
            start = time.monotonic()
            step.returncode = run_command(step.command, log)
            step.seconds = time.monotonic() - start
            print(f"[pool] {step.name}: exit {step.returncode} after {step.seconds:.0f} s (log: {log})", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    while alive := [t for t in threads if t.is_alive()]:
        alive[0].join(timeout=30)
        minutes = (time.monotonic() - start) / 60
        if expected:
            done = sum((d / SUMMARY_NAME).exists() or (d / FAILED_NAME).exists() for d in expected)
            print(f"[pool] {done}/{len(expected)} runs ended, {minutes:.1f} min", flush=True)
        else:  # the run directories are the multiruns' own: count the commands
            print(f"[pool] {sum(s.returncode is not None for s in steps)}/{len(steps)} commands ended, {minutes:.1f} min", flush=True)
