"""Process groups from torchrun's or SLURM's environment; rank-0-only helpers.

* torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``;
* under ``srun`` (one task per GPU) SLURM sets ``SLURM_PROCID``, ``SLURM_NTASKS``,
  ``SLURM_LOCALID`` and the node list (``SLURM_STEP_NODELIST``, else ``SLURM_JOB_NODELIST``): the
  master is the first host of the node list and the port is derived from the job id unless
  ``MASTER_PORT`` is set; the device is ``cuda:SLURM_LOCALID``. The same holds on several nodes.

The backend is NCCL on GPUs and gloo on the CPU. Outside torchrun (whose agents meet before they
start the workers) every rank first checks in at the master's TCP store and waits at most
``trainer.rendezvous_timeout_s`` for the others: a rank that never arrives stops the run with the
master's address and port and the missing ranks, instead of a silent wait. A process that SLURM's
variables say is one of several tasks, but that ``srun`` did not start (the batch step of an
``sbatch`` script), stops at once with the ``srun`` command to use. A process that ran a process
group ends through :func:`end_process`, without the interpreter's finalization.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist


#: whether :func:`init_distributed` started a process group in this process (:func:`end_process`)
_process_group_started = False


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def expand_nodelist(nodelist: str) -> list[str]:
    """The host names of a SLURM node list in SLURM's order: ``gpu[01-03,07],cpu1`` ->
    ``gpu01 gpu02 gpu03 gpu07 cpu1`` (zero padding kept; a suffix after the brackets too)."""
    hosts: list[str] = []
    for item in re.findall(r"[^,\[]+(?:\[[^\]]*\][^,\[]*)*", nodelist.strip()):
        match = re.fullmatch(r"([^\[]*)\[([^\]]+)\](.*)", item)
        if match is None:
            hosts.append(item)
            continue
        prefix, ranges, suffix = match.groups()
        if "[" in suffix:
            raise ValueError(f"cannot parse SLURM node list {nodelist!r}: one bracket group per host name is supported")
        for part in ranges.split(","):
            first, _, last = part.partition("-")
            if not first.isdigit() or last and not last.isdigit():
                raise ValueError(f"cannot parse SLURM node list {nodelist!r}")
            for number in range(int(first), int(last or first) + 1):
                hosts.append(f"{prefix}{number:0{len(first)}d}{suffix}")
    if not hosts:
        raise ValueError(f"cannot parse SLURM node list {nodelist!r}")
    return hosts


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (the DDP master under ``srun``)."""
    return expand_nodelist(nodelist)[0]


class DistributedStartError(RuntimeError):
    """The process group cannot start; the message says why and what to do."""


def integer_variable(env: dict[str, str], name: str, default: int | None = None) -> int:
    """An environment variable that torchrun or SLURM sets to a whole number, read as one; any
    other value is a :class:`DistributedStartError` naming it."""
    text = env.get(name)
    if text is None and default is not None:
        return default
    try:
        value = int(str(text).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise DistributedStartError(
            f"the environment variable {name}={text!r} is not valid: torchrun and SLURM set it to a whole number >= 0; unset it "
            f"(`env -u {name} python train.py ...`) or start the run with torchrun or srun, which set it"
        )
    return value


def environment_ranks(env: dict[str, str] | None = None) -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's or SLURM's variables; (0, 1, 0) alone.

    For SLURM it also fills ``MASTER_ADDR``/``MASTER_PORT`` into ``env`` when missing. SLURM's batch
    step exports ``SLURM_NTASKS`` of the allocation but starts one process, without the
    ``SLURM_STEP_*`` variables that ``srun`` sets: that is refused (it would wait for tasks that
    never start)."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return integer_variable(env, "RANK"), integer_variable(env, "WORLD_SIZE"), integer_variable(env, "LOCAL_RANK", 0)
    ntasks = integer_variable(env, "SLURM_NTASKS", 1)
    if ntasks > 1 and "SLURM_PROCID" in env and "SLURM_STEP_NUM_TASKS" not in env and "SLURM_STEP_ID" not in env:
        raise DistributedStartError(
            f"SLURM_NTASKS={ntasks} says this job has {ntasks} tasks, but this process was not started by srun (it runs in "
            f"the job's batch step, which starts one process, so the other ranks would never arrive): start train.py with "
            f"`srun python train.py ...` in the batch script (one process per task), or run one process with "
            f"`env -u SLURM_NTASKS -u SLURM_NPROCS python train.py ...`"
        )
    if ntasks > 1 and "SLURM_PROCID" in env:
        # the job step's nodes (srun may run on part of the allocation), else the job's
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST", "localhost")
        env.setdefault("MASTER_ADDR", first_host(nodelist))
        env.setdefault("MASTER_PORT", str(20000 + integer_variable(env, "SLURM_JOB_ID", 0) % 20000))
        return integer_variable(env, "SLURM_PROCID"), ntasks, integer_variable(env, "SLURM_LOCALID", 0)
    return 0, 1, 0


def rendezvous(rank: int, world_size: int, addr: str, port: int, timeout_s: float) -> "dist.TCPStore":
    """Rank 0 serves a TCP store at ``addr:port``; every rank checks in there and waits until all
    ``world_size`` ranks have, for at most ``timeout_s`` seconds (then :class:`DistributedStartError`
    naming the address, the port and the ranks that did not arrive)."""
    where = f"MASTER_ADDR={addr} MASTER_PORT={port}"
    try:
        store = dist.TCPStore(addr, port, world_size, rank == 0, timedelta(seconds=timeout_s), wait_for_workers=False)
    except Exception as error:  # the master's port is taken, or (rank > 0) the master never answered
        role = "could not serve" if rank == 0 else "could not reach the master's store at"
        raise DistributedStartError(
            f"rank {rank} of {world_size} {role} {where} within trainer.rendezvous_timeout_s={timeout_s:g} s ({error}); check "
            f"that rank 0 started, that the address and port are reachable from every node and free"
        ) from None
    store.set(f"ham_rendezvous/{rank}", "arrived")
    deadline = time.monotonic() + timeout_s
    while missing := [r for r in range(world_size) if not store.check([f"ham_rendezvous/{r}"])]:
        if time.monotonic() > deadline:
            raise DistributedStartError(
                f"rank(s) {', '.join(map(str, missing))} of {world_size} did not arrive at {where} within "
                f"trainer.rendezvous_timeout_s={timeout_s:g} s (rank {rank} waited): start every rank (srun starts all "
                f"tasks; by hand, one process per RANK), with the same MASTER_ADDR and MASTER_PORT"
            )
        time.sleep(0.05)
    store.set_timeout(timedelta(minutes=30))  # later store operations (NCCL's set-up) wait as torch's default
    return store


def init_distributed(device: str = "auto", rendezvous_timeout_s: float = 300.0) -> DistEnv:
    rank, world_size, local_rank = environment_ranks()
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":  # torchrun: its agents have met already
            dist.init_process_group(backend, rank=rank, world_size=world_size)
        else:
            for key in ("MASTER_ADDR", "MASTER_PORT"):
                if key not in os.environ:
                    raise DistributedStartError(f"RANK and WORLD_SIZE={world_size} are set but {key} is not: set MASTER_ADDR "
                                                f"and MASTER_PORT (the address of rank 0 and a free port), or use torchrun")
            store = rendezvous(rank, world_size, os.environ["MASTER_ADDR"], integer_variable(os.environ, "MASTER_PORT"), rendezvous_timeout_s)
            dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
        global _process_group_started
        _process_group_started = True
    return DistEnv(rank, world_size, local_rank, dev)


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_from_main(value, env: DistEnv):
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not env.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value, env: DistEnv) -> list:
    """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
    if not env.distributed:
        return [value]
    out = [None] * env.world_size
    dist.all_gather_object(out, value)
    return out


def average_buffers(module: torch.nn.Module, env: DistEnv) -> None:
    """Make floating-point buffers (BatchNorm running statistics) the mean over ranks."""
    if not env.distributed:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer.div_(env.world_size)


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def exit_status(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives: 0 for None, an integer as it is, 1 for anything
    else (which Python prints to stderr, as :func:`end_process` does)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def end_process(code: object = 0) -> NoReturn:
    """``sys.exit(code)``; in a process that ran a process group, without the interpreter's
    finalization: the ``atexit`` handlers run and the standard streams are flushed, then
    ``os._exit``. After ``destroy_process_group`` gloo's worker threads are still alive (torch 2.14)
    and may hold the last reference to a tensor of the run's last collective whose Python object is
    gone; released during finalization, that tensor takes the GIL, Python ends the thread, and C++
    answers with ``std::terminate``: SIGABRT ("terminate called without an active exception") after a
    run that completed, which torchrun reports as a failed job."""
    if not _process_group_started:
        sys.exit(code)
    status = exit_status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed stream or a reader that went away: nothing more to say
            pass
    os._exit(status)
