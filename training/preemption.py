"""Stop on SIGUSR1, SIGUSR2, SIGTERM or SIGINT (Ctrl-C) at a step every rank agrees on, save, then
hand the signal on.

Before a time-out SLURM sends the signal asked for with ``--signal`` (submitit asks for SIGUSR2,
``#SBATCH --signal=USR2@<signal_delay_s>``; SIGUSR1 is the common choice in hand-written batch
scripts); before a preemption or a cancel it sends SIGTERM. The handler only records the signal; the trainer asks :meth:`agreed`
every ``trainer.signal_check_every`` steps (an all-reduce of the signal over the ranks, so that one
signalled rank is enough and all stop after the same step), writes a checkpoint that holds its
position inside the epoch, and raises :class:`Stopped`. ``train.py`` then calls :meth:`hand_on`:
the handler that was installed before (submitit's requeues the job on rank 0) gets the signal, and
the process exits with :data:`EXIT_STOPPED` unless that handler exited itself.

Ctrl-C (SIGINT) stops the same way, without a traceback, and exits with :data:`EXIT_INTERRUPTED`
(130, the shell's code for it); Python's own handler, which would raise ``KeyboardInterrupt``
wherever the program is, is not handed the signal. A second Ctrl-C before the position is saved stops
at once (:class:`Interrupted`), without saving: the last checkpoint stays as it was.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any, Callable

import torch

from training import distributed as D

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)
#: exit code of a run that stopped on a signal after saving: the same command continues it
EXIT_STOPPED = 4
#: exit code of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it), saved or not
EXIT_INTERRUPTED = 128 + signal.SIGINT


def exit_code(signum: int) -> int:
    """The exit code of a run that a signal stopped after saving."""
    return EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_STOPPED


class Stopped(Exception):
    """The run saved its position and stopped on a signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class Interrupted(SystemExit):
    """A second Ctrl-C: the run stops at once, without saving (exit code :data:`EXIT_INTERRUPTED`)."""

    def __init__(self) -> None:
        super().__init__(EXIT_INTERRUPTED)


class StopSignals:
    def __init__(self) -> None:
        self.signum = 0
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in SIGNALS:
            if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
                continue  # started to ignore Ctrl-C (a shell's background job, nohup): it stays so
            self.previous[sig] = signal.signal(sig, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            print("\nsecond Ctrl-C: stopped at once, without saving (the last checkpoint is kept)", file=sys.stderr, flush=True)
            raise Interrupted()
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
        """Give ``signum`` to the handler installed before ours (if it is a function; not Python's
        Ctrl-C handler, which would raise ``KeyboardInterrupt``), then exit with :func:`exit_code`."""
        previous = self.previous.get(signum)
        self.uninstall()
        if isinstance(previous, Callable) and previous is not signal.default_int_handler:  # type: ignore[arg-type]
            previous(signum, None)
        sys.exit(exit_code(signum))
