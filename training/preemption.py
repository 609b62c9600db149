"""Stop on SIGUSR1, SIGUSR2 or SIGTERM at a step every rank agrees on, save, then hand the signal on.

Before a time-out SLURM sends the signal asked for with ``--signal`` (submitit asks for SIGUSR2,
``#SBATCH --signal=USR2@<signal_delay_s>``; SIGUSR1 is the common choice in hand-written batch
scripts); before a preemption or a cancel it sends SIGTERM. The handler only records the signal; the trainer asks :meth:`agreed`
every ``trainer.signal_check_every`` steps (an all-reduce of the signal over the ranks, so that one
signalled rank is enough and all stop after the same step), writes a checkpoint that holds its
position inside the epoch, and raises :class:`Stopped`. ``train.py`` then calls :meth:`hand_on`:
the handler that was installed before (submitit's requeues the job on rank 0) gets the signal, and
the process exits with :data:`EXIT_STOPPED` unless that handler exited itself.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any, Callable

import torch

from training import distributed as D

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM)
#: exit code of a run that stopped on a signal after saving: the same command continues it
EXIT_STOPPED = 4


class Stopped(Exception):
    """The run saved its position and stopped on a signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class StopSignals:
    def __init__(self) -> None:
        self.signum = 0
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in SIGNALS:
            self.previous[sig] = signal.signal(sig, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def agreed(self, env: D.DistEnv) -> int:
        """The signal any rank received (0: none), the same on every rank."""
        if not env.distributed:
            return self.signum
        box = torch.tensor([self.signum], device=env.device, dtype=torch.int64)
        torch.distributed.all_reduce(box, op=torch.distributed.ReduceOp.MAX)
        return int(box.item())

    def uninstall(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def hand_on(self, signum: int) -> None:
        """Give ``signum`` to the handler installed before ours (if it is a function), then exit."""
        previous = self.previous.get(signum)
        self.uninstall()
        if isinstance(previous, Callable):  # type: ignore[arg-type]
            previous(signum, None)
        sys.exit(EXIT_STOPPED)
