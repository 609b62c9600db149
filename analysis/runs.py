"""Run records from disk or from W&B, in one form: :class:`Run`.

On disk a run directory holds ``summary.json`` (with the resolved ``config``) when it finished,
``failed.txt`` (and ``.hydra/config.yaml``) when it failed, and only a checkpoint or a history
while it is unfinished; ``scripts/oneshot_prune.py`` adds ``oneshot.json`` to a finished dense run.
A records folder (``results/records/<sweep>/*.json``, written by :func:`archive`) holds the same
summaries, each with its per-epoch ``history`` and its ``oneshot`` results, without checkpoints.
From W&B, ``wandb.Api().runs(path)`` gives each run's config and summary; they are turned into the
same dictionaries, so everything after fetching is one code path.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from training.cell import setting_of, target_of
from training.records import HISTORY_NAME, SUMMARY_NAME
from training.rundir import RUN_CONFIG_DIR, FAILED_NAME



@dataclass
class Run:
    """One run: where it came from, its resolved config, its final metrics (None unless finished)."""

    source: str
    config: dict[str, Any]
    summary: dict[str, Any] | None
    status: str  # finished | failed | unfinished | unreadable (a missing source, a damaged summary or config)
    error: str = ""

    @property
    def experiment(self) -> str:
        return self.config["name"]

    @property
    def setting(self) -> str:
        return setting_of(self.config["data"]["name"]) if self.config else "unknown"

    @property
    def target(self) -> float | None:
        return target_of(self.config["sparsity"])

    @property
    def epochs(self) -> int:
        return int(self.config["trainer"]["epochs"])

    @property
    def seed(self) -> int:
        return int(self.config["trainer"]["seed"])


def from_summary(source: str, summary: dict[str, Any]) -> Run:
    """A finished run from its ``summary.json`` content (or an archived record of it)."""
    if summary.get("failed"):
        return Run(source, summary["config"], None, "failed", summary.get("error", ""))
    return Run(source, summary["config"], summary, "finished")


class UnreadableRun(Exception):
    """A run's records cannot be read (the message says which file and why)."""


def _hydra_config(run_dir: Path) -> dict[str, Any] | None:
    """The composed config ``train.py`` wrote into ``.hydra/`` (interpolations resolved, except
    ``${oc.env:...}``: kept as written, so that no token from this process's environment is
    archived), if any."""
    config_file = run_dir / RUN_CONFIG_DIR / "config.yaml"
    if not config_file.exists():
        return None
    regular_file(config_file)
    import yaml
    from omegaconf import OmegaConf

    from training.records import recorded

    try:
        config = recorded(OmegaConf.load(config_file), numbers=False)  # this process's environment is not the run's
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as error:
        raise UnreadableRun(f"{config_file} is not YAML ({type(error).__name__})") from None
    except Exception as error:  # OmegaConf: an interpolation it cannot resolve, a YAML list instead of a mapping
        raise UnreadableRun(f"{config_file} is not a run's config ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise UnreadableRun(f"{config_file} is not a run's config (a {type(config).__name__}, not a mapping)")
    return config  # type: ignore[return-value]


#: a finished run's metrics: each, where a summary has it, must be a finite number
METRICS = ("test_acc", "test_acc5", "test_loss", "train_acc", "train_loss", "sparsity")


def regular_file(path: Path) -> Path:
    """``path``, if it is a regular file: a FIFO, socket or device would block a reader, or hand it
    endless bytes, and is :class:`UnreadableRun` with the reason."""
    if path.exists() and not path.is_file():
        raise UnreadableRun(f"{path} is not a regular file (a FIFO, a socket or a device): a run's records are files")
    return path


def check_metrics(path: Path | str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a summary or record) if each of :data:`METRICS` it has is a finite number; NaN or
    Infinity (which JSON readers accept) or a string is :class:`UnreadableRun` naming the file."""
    for key in METRICS:
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise UnreadableRun(f"{path} has {key}={value!r}, not a finite number: a damaged record, never averaged")
    return data


def read_summary_file(path: Path) -> dict[str, Any]:
    """A ``summary.json``'s content, checked to be a run's summary (a mapping with the config and
    finite metrics)."""
    try:
        data = json.loads(regular_file(path).read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise UnreadableRun(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise UnreadableRun(f"{path} is a JSON {type(data).__name__}, not a run's summary (a mapping)")
    config = data.get("config")
    if not isinstance(config, dict) or "name" not in config:
        raise UnreadableRun(f"{path} has no run config (`config` with the experiment's `name`)")
    return check_metrics(path, data)


ONESHOT_FILE = "oneshot.json"


def _finished_record(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` with the one-shot pruning results (``oneshot``) when the run has them."""
    record = read_summary_file(run_dir / SUMMARY_NAME)
    if (run_dir / ONESHOT_FILE).exists():
        record["oneshot"] = json.loads(regular_file(run_dir / ONESHOT_FILE).read_text())
    return record


#: what a run directory holds (any one of them marks a directory as a run's)
RUN_FILES = (SUMMARY_NAME, FAILED_NAME, RUN_CONFIG_DIR, HISTORY_NAME, "checkpoint.pt", "run.lock", "train.log", "wandb")


def _from_run_dir(run_dir: Path) -> Run:
    """The run in ``run_dir``; one whose records cannot be read is ``unreadable``, with the reason."""
    try:
        return _read_run_dir(run_dir)
    except UnreadableRun as error:
        return Run(str(run_dir), {}, None, "unreadable", str(error))
    except OSError as error:  # a file that cannot be opened (permissions, a dangling link)
        return Run(str(run_dir), {}, None, "unreadable", f"{error.filename or run_dir}: {error.strerror}")


def _read_run_dir(run_dir: Path) -> Run:
    summary, failed = run_dir / SUMMARY_NAME, run_dir / FAILED_NAME
    if failed.exists():
        return Run(str(run_dir), _hydra_config(run_dir) or {}, None, "failed", failed.read_text().strip())
    if summary.exists():
        data = _finished_record(run_dir)
        if data.get("epoch") is not None and data["epoch"] < data["config"]["trainer"]["epochs"]:
            return Run(str(run_dir), data["config"], None, "unfinished")
        return from_summary(str(run_dir), data)
    # started, not finished (killed, preempted, still running), or a job that never wrote anything
    config = _hydra_config(run_dir) or {}
    what = "" if config else "no records: the job did not start, or died before writing anything"
    return Run(str(run_dir), config, None, "unfinished", what)


def _run_dirs(source: Path) -> list[Path]:
    """The run directories under ``source``: directories that hold any of :data:`RUN_FILES`, and empty
    directories (a sweep job that never wrote anything); not searched inside a run directory."""
    found = []
    for directory, subdirs, files in os.walk(source):
        path = Path(directory)
        if any(name in files or name in subdirs for name in RUN_FILES) or (not subdirs and not files and path != source):
            found.append(path)
            subdirs.clear()
        else:
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
    return sorted(found)


def from_disk(sources: Iterable[Path]) -> list[Run]:
    """Every run under the given run directories, sweep directories or records folders. A run
    directory without ``summary.json`` is failed (``failed.txt``) or unfinished, always listed."""
    runs: list[Run] = []
    for source in sources:
        source = Path(source)
        if not source.exists():
            runs.append(Run(str(source), {}, None, "unreadable", "does not exist"))
            continue
        if source.is_file():
            try:
                runs.append(from_summary(str(source), read_summary_file(source)))
            except UnreadableRun as error:
                runs.append(Run(str(source), {}, None, "unreadable", str(error)))
            continue
        run_dirs = _run_dirs(source)
        runs += [_from_run_dir(run_dir) for run_dir in run_dirs]
        inside = set(run_dirs)
        for path in sorted(source.rglob("*.json")):  # archived records (results/records/...)
            if not inside & {path.parent, *path.parents} and (run := _from_record_file(path)) is not None:
                runs.append(run)
    return runs


def _from_record_file(path: Path) -> Run | None:
    """The run an archived record holds; None for a JSON file that is not a record; ``unreadable``,
    with the reason, for a file that cannot be one (not a regular file, not JSON, a metric that is
    not a finite number)."""
    try:
        record = _read_record(regular_file(path))
        return None if record is None else from_summary(str(path), check_metrics(path, record))
    except UnreadableRun as error:
        return Run(str(path), {}, None, "unreadable", str(error))
    except OSError as error:
        return Run(str(path), {}, None, "unreadable", f"{path}: {error.strerror}")


def record_name(run_dir: Path) -> str:
    """The file name of a run's record: ``<experiment>__<overrides>.json``, the names of its run
    directory (``<sweep>/<experiment>/<overrides>/``) and of the directory above it."""
    return f"{run_dir.parent.name}__{run_dir.name}.json"


def archive(sweep_dir: Path, records_dir: Path) -> int:
    """Copy the record of each run under ``sweep_dir`` (``<sweep>/<experiment>/<overrides>/``) into
    ``records_dir``: a finished run's summary with its ``history`` (from ``history.jsonl``) and
    ``oneshot`` results; a failed run's config, message and ``failed: true``. Returns the count."""
    records_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for run_dir in sorted(p.parent for p in sweep_dir.glob(f"*/*/{RUN_CONFIG_DIR}")):
        if (run_dir / SUMMARY_NAME).exists():
            record = _finished_record(run_dir)
            history = run_dir / HISTORY_NAME
            if history.exists():
                record["history"] = [json.loads(line) for line in history.read_text().splitlines()]
        elif (run_dir / FAILED_NAME).exists():
            record = {"config": _hydra_config(run_dir), "failed": True, "error": (run_dir / FAILED_NAME).read_text().strip()}
        else:
            continue
        (records_dir / record_name(run_dir)).write_text(json.dumps(record, indent=1) + "\n")
        count += 1
    return count


def _read_record(path: Path) -> dict[str, Any] | None:
    """An archived record's content, or None for a JSON document that is not one; a file that is not
    JSON (a truncated record) is :class:`UnreadableRun`."""
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise UnreadableRun(f"{path} is not valid JSON ({error})") from None
    return data if isinstance(data, dict) and isinstance(data.get("config"), dict) and "name" in data["config"] else None


def from_wandb(path: str, api: Any = None) -> list[Run]:
    """Every run of the W&B project ``entity/project`` (``api``: a ``wandb.Api()``, given in tests)."""
    if api is None:
        import wandb

        api = wandb.Api()
    runs = []
    for wandb_run in api.runs(path):
        summary = {k: v for k, v in dict(wandb_run.summary).items() if not k.startswith("_")}
        config = {k: v for k, v in dict(wandb_run.config).items() if not k.startswith("_")}  # W&B's own entries (_wandb)
        source = f"wandb:{path}/{wandb_run.id}"
        if wandb_run.state == "finished" and "test_acc" in summary:
            runs.append(Run(source, config, summary, "finished"))
        elif wandb_run.state in ("failed", "crashed"):
            runs.append(Run(source, config, None, "failed", wandb_run.state))
        else:
            runs.append(Run(source, config, None, "unfinished"))
    return runs
