"""What a run leaves behind: ``history.jsonl``, ``summary.json``, ``train.log`` and (optionally) a W&B run.

Only the main rank writes. ``history.jsonl`` holds one JSON object per finished epoch;
``summary.json`` holds the last epoch's metrics, the totals and the configuration (resolved, except
``${oc.env:...}``, kept as written: :func:`training.config.recorded`).

The W&B run has the id of the run directory and trajectory, so a resumed run continues it. Online,
W&B itself appends to the run. Offline, W&B cannot append to an earlier process's directory (each
``wandb.init`` makes a new ``wandb/offline-run-<time>-<id>``), so a resumed run logs the epochs its
checkpoint holds into its new directory and then removes the earlier directories of the same run:
the run directory always holds one offline W&B run with the whole history, ready for ``wandb sync``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig

from training.config import recorded, wandb_mode

HISTORY_NAME = "history.jsonl"
SUMMARY_NAME = "summary.json"
LOG_NAME = "train.log"
#: the data sources of the ImageNet setting; every other source is the small setting
IMAGE_DATA = ("ffcv_imagenet", "imagefolder")


def setting_of(data_name: str) -> str:
    """``imagenet`` or ``small``: which of the paper's settings a run with ``data.name`` belongs to."""
    return "imagenet" if data_name in IMAGE_DATA else "small"


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def wandb_labels(cfg: DictConfig) -> tuple[str, str, list[str]]:
    """The W&B run name (experiment, target sparsity, seed), group (the experiment) and tags (method,
    Sign-In, HAM, optimizer, target sparsity, setting, epochs), so that W&B's own UI groups and
    filters runs by table cell; ``logger.wandb.group`` replaces the group, ``logger.wandb.tags`` are
    added to the tags. Read from the :func:`~training.config.recorded` config: text read from the
    environment stays ``${oc.env:NAME}`` here too (a number, such as a job id, is its value)."""
    c = recorded(cfg)
    s, w = c["sparsity"], c["logger"]["wandb"]
    sparse = s["method"] != "dense"
    target = f"{s['target']:g}" if isinstance(s["target"], (int, float)) else s["target"]
    name = f"{c['name']}" + (f"@{target}" if sparse else "") + f"-seed{c['trainer']['seed']}"
    tags = [
        f"method:{s['method']}",
        f"signin:{'on' if s['sign_in'] else 'off'}",
        f"ham:{'on' if c['ham']['enabled'] else 'off'}",
        f"optimizer:{c['optimizer']['name']}",
        f"sparsity:{target}" if sparse else "sparsity:0",
        f"setting:{setting_of(c['data']['name'])}",
        f"epochs:{c['trainer']['epochs']}",
    ]
    return name, str(w["group"] or c["name"]), tags + [str(t) for t in w["tags"] if str(t) not in tags]


class RunRecords:
    """Records of one run; ``history`` holds the epochs a resumed checkpoint already finished."""

    def __init__(self, run_dir: Path, cfg: DictConfig, enabled: bool, run_id: str, history: list[dict[str, Any]]) -> None:
        self.run_dir, self.cfg, self.enabled = run_dir, cfg, enabled
        self.wandb_run = None
        mode = wandb_mode(cfg)
        if enabled and mode != "disabled":
            import wandb

            config = recorded(cfg)  # ${oc.env:...} as written: no token from the environment reaches W&B
            w = config["logger"]["wandb"]
            name, group, tags = wandb_labels(cfg)
            self.wandb_run = wandb.init(
                mode=mode, project=str(w["project"]), entity=w["entity"] and str(w["entity"]), group=group, tags=tags,
                name=name, id=run_id, resume="allow", dir=str(run_dir), config=config,
            )
        if history or (run_dir / HISTORY_NAME).exists():
            self._rewrite_history(history)
        if self.wandb_run is not None and mode == "offline":
            for record in history:
                self._log_wandb(record)
            self._remove_earlier_offline_runs(run_id)

    def _rewrite_history(self, history: list[dict[str, Any]]) -> None:
        """Make ``history.jsonl`` exactly the epochs a checkpoint holds (after a resume)."""
        if self.enabled:
            _write_text_atomic(self.run_dir / HISTORY_NAME, "".join(json.dumps(h) + "\n" for h in history))

    def _remove_earlier_offline_runs(self, run_id: str) -> None:
        current = Path(self.wandb_run.settings.sync_dir).resolve()
        for earlier in (self.run_dir / "wandb").glob(f"offline-run-*-{run_id}*"):
            if earlier.is_dir() and earlier.resolve() != current:
                shutil.rmtree(earlier)

    def _log_wandb(self, record: dict[str, Any]) -> None:
        flat = {k: v for k, v in record.items() if not isinstance(v, dict)}
        for group in ("layer_density", "layer_sign_flips"):
            for layer, value in record.get(group, {}).items():
                flat[f"{group}/{layer}"] = value
        self.wandb_run.log(flat, step=record["epoch"])

    def log_epoch(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / HISTORY_NAME, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb_run is not None:
            self._log_wandb(record)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if not self.enabled:
            return
        summary = dict(summary, config=recorded(self.cfg))
        _write_text_atomic(self.run_dir / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
        if self.wandb_run is not None:
            self.wandb_run.summary.update({k: v for k, v in summary.items() if not isinstance(v, dict)})

    def close(self, exit_code: int = 0) -> None:
        if self.wandb_run is not None:
            self.wandb_run.finish(exit_code=exit_code)
            self.wandb_run = None


class _Tee(io.TextIOBase):
    """A text stream that writes to the console stream and to a second one (the log)."""

    def __init__(self, console: TextIO, log: TextIO) -> None:
        self.console, self.log = console, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.console.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.console.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()


class TrainLog:
    """``train.log``: everything the run prints (the epoch lines, warnings, errors) as plain text,
    appended across resumes, with a header line per command. Progress-bar frames go to the console
    only (:func:`console_stderr`).

    :meth:`start` copies stdout and stderr into memory from the beginning of the run; :meth:`keep`
    (rank 0, once the run passed its checks) writes that into the file and continues there, so that a
    refused run leaves no ``train.log`` behind; :meth:`close` restores the streams."""

    def __init__(self) -> None:
        self.buffer: TextIO = io.StringIO()
        self.streams = (sys.stdout, sys.stderr)
        self.file: TextIO | None = None
        self.tees = [_Tee(stream, self.buffer) for stream in self.streams]

    def start(self) -> "TrainLog":
        sys.stdout, sys.stderr = self.tees
        return self

    def keep(self, run_dir: Path) -> None:
        self.file = open(run_dir / LOG_NAME, "a", buffering=1)
        command = " ".join(sys.argv)
        self.file.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {command}\n{self.buffer.getvalue()}")
        for tee in self.tees:
            tee.log = self.file

    @property
    def kept(self) -> bool:
        return self.file is not None

    def record(self, text: str) -> None:
        """Into the log only (not the console)."""
        (self.file or self.buffer).write(text)

    def close(self) -> None:
        sys.stdout, sys.stderr = self.streams
        if self.file is not None:
            self.file.close()
            self.file = None


def console_stderr() -> TextIO:
    """The terminal's stderr, without ``train.log`` (for progress bars)."""
    return sys.stderr.console if isinstance(sys.stderr, _Tee) else sys.stderr
