"""The run directory: one run at a time, and the records of the configuration that ran there.

* :class:`RunLock` — an exclusive lock on ``run.lock``, which names the holder (process, host, start
  time) so that a second run started in the same directory can say which run it collided with.
  The kernel drops the lock when the process ends, however it ends; the file of a killed run stays
  but blocks nothing. A refused run leaves the directory as it found it, a killed run's
  ``run.lock`` included, and removes a run directory that Hydra created for it.
* :func:`save_run_config` — ``.hydra/config.yaml``, ``overrides.yaml`` and ``hydra.yaml``, written by
  us (``hydra.output_subdir=null``) once a run has passed every check, so that a refused run leaves
  an existing run's records as they were.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

LOCK_INFO = "run.lock"
#: a run's saved Hydra config, inside its run directory (the repository's groups: training.config.CONFIGS_ROOT)
RUN_CONFIG_DIR = ".hydra"
#: torch threads of each job of a local sweep, read by the trainer when trainer.threads is null
SWEEP_THREADS_VARIABLE = "HAM_SWEEP_THREADS"
#: the multirun a job belongs to (set by SweepReport, inherited by the jobs, also through submitit)
MULTIRUN_ID_VARIABLE = "HAM_MULTIRUN_ID"
FAILED_NAME = "failed.txt"
#: beside failed.txt: the id of the multirun in which the run failed
FAILED_IN_NAME = "failed_in_multirun"


def record_failure(run_dir: Path, message: str) -> None:
    """``failed.txt`` (the message) and, inside a multirun, which multirun it failed in."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_NAME).write_text(message + "\n")
    multirun = os.environ.get(MULTIRUN_ID_VARIABLE)
    if multirun:
        (run_dir / FAILED_IN_NAME).write_text(multirun + "\n")


def clear_failure(run_dir: Path) -> None:
    """A run that failed before and has now finished."""
    (run_dir / FAILED_NAME).unlink(missing_ok=True)
    (run_dir / FAILED_IN_NAME).unlink(missing_ok=True)


class RunDirectoryBusy(RuntimeError):
    """Another run holds the run directory; the message names it."""


class RunLock:
    """A POSIX record lock (``lockf``) on ``run.lock`` in the run directory. Unlike ``flock`` it is
    not inherited by forked processes (data-loader workers), and the kernel drops it when the
    process ends, however it ends: a killed run never blocks the next one."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.fd = run_dir, None
        self.path = run_dir / LOCK_INFO
        #: the file a killed run left (its content and times), restored by :meth:`give_back`
        self.found: tuple[bytes, int, int] | None = None

    def acquire(self) -> str | None:
        """Take the lock; return None, or a message naming the run that holds it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if error.errno not in (errno.EACCES, errno.EAGAIN):  # a file system without locks (some NFS)
                print(f"warning: cannot lock {self.path} ({error}); two runs started in {self.run_dir} would not be detected", file=sys.stderr)
                return None
            return (
                f"run directory {self.run_dir} is in use by another run ({holder}). Wait for it to finish, or choose "
                f"another run directory (name=... or hydra.run.dir=...)."
            )
        self.fd = fd
        if existed:  # a killed run's file: it blocks nothing, but a refused run puts it back as it was
            info = os.fstat(fd)
            self.found = (os.pread(fd, 1 << 16, 0), info.st_atime_ns, info.st_mtime_ns)  # pread: the offset stays at 0
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        return None

    def release(self) -> None:
        """The run is over: remove ``run.lock`` and drop the lock."""
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)  # closing drops the lock
            self.fd = None

    def give_back(self) -> None:
        """The run was refused: leave ``run.lock`` as it was found (a killed run's file with its
        content and times, or none) and drop the lock."""
        if self.fd is None:
            return
        if self.found is None:
            self.release()
            return
        content, atime, mtime = self.found
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, content, 0)
        os.utime(self.fd, ns=(atime, mtime))
        os.close(self.fd)
        self.fd = None


def save_run_config(run_dir: Path, cfg: DictConfig) -> None:
    """What Hydra would write into ``.hydra/``: the composed config, the overrides, Hydra's config
    (all as written: an interpolation that reads the environment is not resolved)."""
    target = run_dir / RUN_CONFIG_DIR
    target.mkdir(parents=True, exist_ok=True)
    hydra_cfg = HydraConfig.get()
    OmegaConf.save(cfg, target / "config.yaml")
    overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)  # as typed: ${oc.env:...} not resolved
    OmegaConf.save(OmegaConf.create(overrides), target / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), target / "hydra.yaml")


#: the directories Hydra creates for this process's run (``hydra.run.dir`` and the parents it lacked), deepest first
NEW_RUN_DIRS: list[Path] = []


def remove_new_run_dirs() -> None:
    """A refused run: remove the directories Hydra created for it, as long as they are empty (a
    refused run on a new path leaves no empty directory behind)."""
    for path in NEW_RUN_DIRS:
        try:
            path.rmdir()
        except OSError:  # not empty (or already gone): it and its parents stay
            return


def _too_long(parts: list[str] | tuple[str, ...], existing: Path) -> str | None:
    """What is wrong with the longest of a path's parts, if it is longer than the file system under
    ``existing`` allows for a name (255 bytes on most)."""
    longest = max(parts, key=lambda part: len(os.fsencode(part)))
    allowed = os.pathconf(existing, "PC_NAME_MAX")
    size = len(os.fsencode(longest))
    return f"{longest[:60]}... is {size} bytes, more than the file system allows for a name ({allowed})" if size > allowed else None


def longest_job_dirname(config: DictConfig) -> str:
    """The longest ``${hydra:job.override_dirname}`` a job of this multirun gets, built as Hydra's
    basic sweeper (one ``key=value`` per key, the sweep's values as strings) and its config loader
    (sorted, without the excluded keys) build it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    naming = config.hydra.job.config.override_dirname
    lines: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(OmegaConf.to_container(config.hydra.overrides.task, resolve=False)):
        key = override.get_key_element()
        swept = override.is_sweep_override() and override.is_discrete_sweep()
        values = list(override.sweep_string_iterator()) if swept else [override.get_value_element_as_str()]
        if override.key_or_group not in naming.exclude_keys:
            lines[key] = max((f"{key}={value}" for value in values), key=len)
        else:
            lines.pop(key, None)
    return re.sub("=", naming.kv_sep, naming.item_sep.join(sorted(lines.values())))


def refuse(message: str) -> NoReturn:
    """Stop before any work: ``error: <message>`` on stderr, exit code 2 (as train.py's config errors)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


class RunDirectoryCheck(Callback):
    """Hydra callback (``configs/train.yaml``): stop with exit code 2 and one sentence when the run or
    sweep directory is an existing file, cannot be written, or has a name (a sweep: a job's name)
    longer than the file system allows, before Hydra fails on it with a traceback; for a single run,
    note which directories Hydra is about to create (:data:`NEW_RUN_DIRS`)."""

    def _check(self, config: DictConfig, key: str) -> None:
        HydraConfig.instance().set_config(config)  # resolves ${hydra:...} in the directory's name
        path = Path(str(OmegaConf.select(config, key))).absolute()
        if key == "hydra.run.dir":
            NEW_RUN_DIRS[:] = [p for p in (path, *path.parents) if not p.exists() and not p.is_symlink()]
        dangling = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
        if dangling is not None:
            refuse(f"{key}={path} is not valid: {dangling} is a symbolic link to {os.readlink(dangling)}, which does not exist; "
                   f"create its target or choose another directory")
        if path.exists() and not path.is_dir():
            refuse(f"{key}={path} is not valid: it is a file, and the run needs a directory there")
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not os.access(existing, os.W_OK | os.X_OK):  # also false on a read-only file system, even for root
            refuse(f"{key}={path} is not valid: {existing} is not writable; choose another directory")
        too_long = _too_long(path.parts, existing)
        if too_long:  # the overrides name the directory: many of them made one name too long
            refuse(f"{key}={path} is not valid: its part {too_long}; name the directory yourself ({key}=outputs/my_run) or give "
                   f"fewer overrides")
        if key == "hydra.sweep.dir":
            template = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
            too_long = _too_long(longest_job_dirname(config).split("/"), existing) if "${hydra:job.override_dirname}" in template else None
            if too_long:
                refuse(f"hydra.sweep.subdir={template} is not valid for this sweep: the longest job's name (its overrides, joined) "
                   f"{too_long}; name the jobs' directories yourself (hydra.sweep.subdir=${{name}}/job${{hydra:job.num}}) or give fewer "
                   f"overrides")

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config, "hydra.sweep.dir")


class SweepReport(Callback):
    """Hydra callback: at the end of a multirun, list the jobs that failed (their ``failed.txt``)
    with their messages, and exit with code 1 if any did, so that a sweep's failures are visible.

    The multirun's id goes to its jobs through the environment (``HAM_MULTIRUN_ID``), and a job that
    fails records it beside ``failed.txt``. Failures recorded by another multirun in the same sweep
    directory (an earlier one, or one running beside it) are listed apart and do not set the exit
    code; a failure without an id (the variable did not reach the job) counts as this multirun's."""

    def __init__(self) -> None:
        self.multirun = uuid.uuid4().hex

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        os.environ[MULTIRUN_ID_VARIABLE] = self.multirun

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        mine, others = [], []
        for path in sorted(sweep_dir.rglob(FAILED_NAME)):
            tag = path.parent / FAILED_IN_NAME
            (others if tag.exists() and tag.read_text().strip() != self.multirun else mine).append(path)
        if others:
            print(f"note: {len(others)} run(s) in {sweep_dir} failed in another multirun (not retried by this one):", file=sys.stderr)
            for path in others:
                print(f"  {path.parent}: {path.read_text().strip().splitlines()[0]}", file=sys.stderr)
        if not mine:
            return
        print(f"error: {len(mine)} job(s) of the sweep in {sweep_dir} failed:", file=sys.stderr)
        for path in mine:
            print(f"  {path.parent}: {path.read_text().strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


class LocalSweepThreads(Callback):
    """Hydra callback: submitit's local launcher starts all jobs of a sweep batch at once, and each
    took all cores (a 2-job sweep ran four times slower than its jobs one after the other). For a
    local launcher, give each job ``cores / jobs in a batch`` torch threads, through an environment
    variable that the jobs inherit and the trainer reads when ``trainer.threads`` is null."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        if not str(OmegaConf.select(config, "hydra.launcher._target_")).endswith("LocalLauncher"):
            return
        jobs = 1
        for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
            if override.is_sweep_override():
                jobs *= len(list(override.sweep_iterator()))
        batch = OmegaConf.select(config, "hydra.sweeper.max_batch_size") or jobs
        cores = len(os.sched_getaffinity(0))
        os.environ[SWEEP_THREADS_VARIABLE] = str(max(1, cores // max(1, min(jobs, batch))))
