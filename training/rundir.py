"""The run directory: one run at a time, and the records of the configuration that ran there.

* :class:`RunLock` — an exclusive lock on ``run.lock``, which names the holder (process, host, start
  time) so that a second run started in the same directory can say which run it collided with.
  The kernel drops the lock when the process ends, however it ends; the file of a killed run stays
  but blocks nothing. A refused run leaves the directory as it found it, a killed run's
  ``run.lock`` included, and removes a run directory that Hydra created for it.
* :func:`save_run_config` — ``.hydra/config.yaml``, ``overrides.yaml`` and ``hydra.yaml``, written by
  us (``hydra.output_subdir=null``) once a run has passed every check, so that a refused run leaves
  an existing run's records as they were.
* :func:`record_failure` / :func:`clear_failure` — a failed job's ``failed.txt``, which a sweep's
  report (:mod:`training.hydra_callbacks`) lists.
* :func:`job_dirname` — the directory name a run's overrides give (``${job_dirname:}`` in
  ``configs/train.yaml``): Hydra's ``job.override_dirname``, with each value that is a path
  shortened to its last name and a digest (:func:`dirname_item`), so that no override places a run
  outside its root, and :func:`name_escapes`, the check that ``name`` keeps it there too.

The Hydra callbacks that check the run directory before Hydra creates it and report a sweep's
failures are in :mod:`training.hydra_callbacks`.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import os
import re
import socket
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

LOCK_INFO = "run.lock"
#: a run's saved Hydra config, inside its run directory (the repository's groups: training.config.CONFIGS_ROOT)
RUN_CONFIG_DIR = ".hydra"
#: the multirun a job belongs to (set by SweepReport, inherited by the jobs, also through submitit)
MULTIRUN_ID_VARIABLE = "HAM_MULTIRUN_ID"
FAILED_NAME = "failed.txt"
#: the run's checkpoint (training.checkpoint writes and reads it): its presence says a run has begun
CHECKPOINT_NAME = "checkpoint.pt"
#: beside failed.txt: the id of the multirun in which the run failed
FAILED_IN_NAME = "failed_in_multirun"


def is_path_value(value: str) -> bool:
    """Whether an override's value reads as a file path (it has a ``/``, starts with ``~``, or is
    ``.``/``..``): such a value would add directories, or climb out, if spliced into a name."""
    return "/" in value or "\\" in value or value.startswith("~") or value in (".", "..")


def dirname_item(line: str) -> str:
    """One ``key=value`` of a directory name: as typed, except that a path value becomes its last
    name and the first 8 hex digits of the SHA-256 of the whole value
    (``sparsity.calibration=../../x.yaml`` -> ``sparsity.calibration=x.yaml@5d1f3a0b``)."""
    key, sep, value = line.partition("=")
    if not sep or not is_path_value(value):
        return line
    last = next((part for part in reversed(re.split(r"[/\\]", value)) if part not in ("", ".", "..", "~")), "path")
    return f"{key}={last}@{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def job_dirname(overrides: list[str], exclude_keys: list[str], item_sep: str = ",", kv_sep: str = "=") -> str:
    """The directory name of a job with these (task) overrides: Hydra's ``job.override_dirname``
    (the overrides as typed, without ``exclude_keys``, sorted, joined) with :func:`dirname_item`
    applied to each."""
    parsed = [_parsed_override(o) for o in overrides]
    lines = sorted(dirname_item(line) for key, line in parsed if key not in exclude_keys)
    return re.sub("=", kv_sep, item_sep.join(lines))


@functools.lru_cache(maxsize=4096)
def _parsed_override(override: str) -> tuple[str, str]:
    """Hydra's reading of one override: its key (or group) and its line as typed; once per string (a
    planner names a table's hundred jobs from a few distinct overrides)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([override])[0]
    return parsed.key_or_group, parsed.input_line


def _job_dirname_of_running_job() -> str:
    hydra_cfg = HydraConfig.get()
    naming = hydra_cfg.job.config.override_dirname
    return job_dirname(list(hydra_cfg.overrides.task), list(naming.exclude_keys), naming.item_sep, naming.kv_sep)


def register_dirname_resolver() -> None:
    """``${job_dirname:}``: :func:`job_dirname` of the running job's overrides and naming settings."""
    if not OmegaConf.has_resolver("job_dirname"):
        OmegaConf.register_new_resolver("job_dirname", _job_dirname_of_running_job)


def name_escapes(name: str) -> bool:
    """Whether a run's ``name`` would place it outside its root (``outputs/``, the sweep directory):
    an absolute path, or one with a ``..`` part."""
    return Path(name).is_absolute() or ".." in Path(name).parts


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
