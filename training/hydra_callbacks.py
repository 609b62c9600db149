"""The Hydra callbacks of ``configs/train.yaml`` (``hydra.callbacks``): checks Hydra cannot make
itself, run before it creates a directory or after a multirun ends.

* :class:`RunDirectoryCheck` — a run or sweep directory that cannot be one: one sentence, exit code 2;
  a refused single run (the task returned :class:`Refused`) leaves no directory that Hydra created for it.
* :class:`SweepReport` — after a multirun, the jobs that failed and their messages; exit code 1 if any.
* :class:`LocalSweepThreads` — jobs of a local sweep that start together share the cores.
* :class:`LauncherOfASingleRun` — a launcher chosen for a run without ``-m``: a warning that it trains here.
"""

from __future__ import annotations

import math
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from training.rundir import FAILED_IN_NAME, FAILED_NAME, MULTIRUN_ID_VARIABLE, dirname_item, name_escapes

#: torch threads of each job of a local sweep, read by the trainer when trainer.threads is null
SWEEP_THREADS_VARIABLE = "HAM_SWEEP_THREADS"


@dataclass(frozen=True)
class Refused:
    """What a single run's task function returns when it refused to run (its message already
    printed): :class:`RunDirectoryCheck` removes the directories Hydra created for it and exits
    with ``exit_code``."""

    exit_code: int


def missing_directories(path: Path) -> list[Path]:
    """The directories that creating ``path`` creates: it and its missing parents, deepest first."""
    return [p for p in (path, *path.parents) if not p.exists() and not p.is_symlink()]


def remove_empty(directories: list[Path]) -> None:
    """Remove ``directories`` (deepest first) while they are empty; the first that is not, and its
    parents, stay."""
    for path in directories:
        try:
            path.rmdir()
        except OSError:  # not empty (or already gone)
            return


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the file system cannot even look up (too long) does not."""
    try:
        return path.exists()
    except OSError:
        return False


def _too_long(parts: list[str] | tuple[str, ...], existing: Path) -> str | None:
    """What is wrong with the longest of a path's parts, if it is longer than the file system under
    ``existing`` allows for a name (255 bytes on most)."""
    longest = max(parts, key=lambda part: len(os.fsencode(part)))
    allowed = os.pathconf(existing, "PC_NAME_MAX")
    size = len(os.fsencode(longest))
    return f"{longest[:60]}... is {size} bytes, more than the file system allows for a name ({allowed})" if size > allowed else None


def sweep_overrides(config: DictConfig) -> list[str]:
    """A multirun's overrides as Hydra's basic sweeper sees them: ``hydra.sweeper.params`` (a sweep
    config, ``+sweep=<name>``) first, then the command line's (which win for the same key)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    return [f"{key}={value}" for key, value in params.items()] + list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))


def job_count(overrides: list[str]) -> int:
    """The number of jobs of a multirun with these overrides, as Hydra's basic sweeper counts them:
    the product of each key's number of values, a later override of a key replacing an earlier one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    swept = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        swept[override.get_key_element()] = len(list(override.sweep_iterator())) if override.is_sweep_override() else 1
    return math.prod(swept.values())


def longest_job_dirname(config: DictConfig) -> str:
    """The longest ``${job_dirname:}`` a job of this multirun gets, built as Hydra's basic sweeper
    (one ``key=value`` per key, the sweep's values as strings) and :func:`training.rundir.job_dirname`
    (sorted, without the excluded keys, path values shortened) build it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    naming = config.hydra.job.config.override_dirname
    lines: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(sweep_overrides(config)):
        key = override.get_key_element()
        swept = override.is_sweep_override() and override.is_discrete_sweep()
        values = list(override.sweep_string_iterator()) if swept else [override.get_value_element_as_str()]
        if override.key_or_group not in naming.exclude_keys:
            lines[key] = max((dirname_item(f"{key}={value}") for value in values), key=len)
        else:
            lines.pop(key, None)
    return re.sub("=", naming.kv_sep, naming.item_sep.join(sorted(lines.values())))


def _swept_values(config: DictConfig, key: str) -> list[object]:
    """The values a multirun gives ``key`` (``name=a,b``: both; from a sweep config's params too:
    :func:`sweep_overrides`), each resolved as the job's config resolves it (``${oc.env:X}``
    included); none when it is not swept."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # resolved first, as the jobs' config will be (the parser's iterator would escape an interpolation)
    resolved = [str(OmegaConf.create({"line": line}).line) if "${" in line else line for line in sweep_overrides(config)]
    values: list[object] = []
    for override in OverridesParser.create().parse_overrides(resolved):
        if override.key_or_group.lstrip("+~") == key and override.is_sweep_override():
            values += list(override.sweep_string_iterator())
    return values


def refuse(message: str) -> NoReturn:
    """Stop before any work: ``error: <message>`` on stderr, exit code 2 (as train.py's config errors)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


class RunDirectoryCheck(Callback):
    """Hydra callback (``configs/train.yaml``): stop with exit code 2 and one sentence when the run or
    sweep directory is an existing file, cannot be written, or has a name (a sweep: a job's name)
    longer than the file system allows, before Hydra fails on it with a traceback; for a single run,
    note which directories Hydra is about to create, and remove them (while empty) when the run
    returns :class:`Refused` — then exit with its code.

    Hydra creates the run directory before the task function starts, and only this callback sees
    the file system as it was before; the task hands its refusal back as its return value."""

    def __init__(self) -> None:
        self.created: list[Path] = []

    def _check(self, config: DictConfig, key: str) -> None:
        HydraConfig.instance().set_config(config)  # resolves ${hydra:...} in the directory's name
        self._check_name(config, key)
        path = Path(str(OmegaConf.select(config, key))).absolute()
        existing = next(p for p in (path, *path.parents) if _exists(p))
        too_long = _too_long(path.parts, existing)
        if too_long:  # first: the file system refuses to look up a name that long (OSError: File name too long)
            refuse(f"{key}={path} is not valid: its part {too_long}; name the directory yourself ({key}=outputs/my_run) or give "
                   f"fewer overrides")
        if key == "hydra.run.dir":
            self.created = missing_directories(path)
        dangling = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
        if dangling is not None:
            refuse(f"{key}={path} is not valid: {dangling} is a symbolic link to {os.readlink(dangling)}, which does not exist; "
                   f"create its target or choose another directory")
        if path.exists() and not path.is_dir():
            refuse(f"{key}={path} is not valid: it is a file, and the run needs a directory there")
        if not os.access(existing, os.W_OK | os.X_OK):  # also false on a read-only file system, even for root
            refuse(f"{key}={path} is not valid: {existing} is not writable; choose another directory")
        if key == "hydra.sweep.dir":
            template = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
            too_long = _too_long(longest_job_dirname(config).split("/"), existing) if "${job_dirname:}" in template else None
            if too_long:
                refuse(f"hydra.sweep.subdir={template} is not valid for this sweep: the longest job's name (its overrides, joined) "
                   f"{too_long}; name the jobs' directories yourself (hydra.sweep.subdir=${{name}}/job${{hydra:job.num}}) or give fewer "
                   f"overrides")

    @staticmethod
    def _check_name(config: DictConfig, key: str) -> None:
        """``name`` must keep the run inside its root (``outputs/``, the sweep directory) when the
        directory is built from it: unless the user set the directory (``hydra.run.dir``,
        ``hydra.sweep.subdir``) themselves."""
        group, leaf = ("run", "dir") if key == "hydra.run.dir" else ("sweep", "subdir")
        template_key = f"hydra.{group}.{leaf}"
        set_by_user = any(o.split("=", 1)[0].lstrip("+~") == template_key for o in config.hydra.overrides.hydra)
        template = str(OmegaConf.to_container(config.hydra[group], resolve=False)[leaf])  # as written: ${name}/...
        if set_by_user or "${name}" not in template:
            return
        # the name this run has, and in a sweep every name it sweeps over (the sweep-level config has only the first)
        names = [OmegaConf.select(config, "name")] + (_swept_values(config, "name") if key == "hydra.sweep.dir" else [])
        for name in names:
            if name is not None and name_escapes(str(name)):
                root = "outputs/" if key == "hydra.run.dir" else f"the sweep directory {OmegaConf.select(config, 'hydra.sweep.dir')}"
                refuse(f"name={name} is not valid: the run directory is built from it ({template_key}={template}) and would lie "
                       f"outside {root}; give a name without '..' that is not an absolute path, or set {template_key} yourself")

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config, "hydra.run.dir")

    def on_run_end(self, config: DictConfig, job_return: JobReturn | None = None, **kwargs) -> None:
        if job_return is not None and job_return.status == JobStatus.COMPLETED and isinstance(job_return.return_value, Refused):
            remove_empty(self.created)  # a refused run on a new path leaves no empty directory
            sys.exit(job_return.return_value.exit_code)

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
        if not str(OmegaConf.select(config, "hydra.launcher._target_")).endswith("LocalLauncher"):
            return
        jobs = job_count(sweep_overrides(config))
        batch = OmegaConf.select(config, "hydra.sweeper.max_batch_size") or jobs
        cores = len(os.sched_getaffinity(0))
        os.environ[SWEEP_THREADS_VARIABLE] = str(max(1, cores // max(1, min(jobs, batch))))


class LauncherOfASingleRun(Callback):
    """Hydra callback: a launcher (``hydra/launcher=slurm``, ``slurm_cpu``, ``local``) acts only on a
    multirun; a run without ``-m`` trains here, in this process. Say so before it starts, so that a
    run meant for SLURM is not mistaken for a submitted one."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        launcher = OmegaConf.select(config, "hydra.runtime.choices", default={}).get("hydra/launcher")
        if launcher not in (None, "basic"):
            print(f"warning: hydra/launcher={launcher} acts only on a multirun (python train.py -m ...); this run, without -m, "
                  f"trains here in this process", file=sys.stderr)

