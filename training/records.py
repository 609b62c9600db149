"""What a run leaves behind: ``history.jsonl``, ``summary.json``, ``train.log`` and (optionally) a W&B run.

Only the main rank writes. ``history.jsonl`` holds one JSON object per finished epoch;
``summary.json`` holds the last epoch's metrics, the totals and the configuration (resolved, except
``${oc.env:...}``, kept as written: :func:`recorded`).

The W&B run has the id of the run directory and trajectory, so a resumed run continues it. Online,
W&B itself appends to the run. Offline, W&B cannot append to an earlier process's directory (each
``wandb.init`` makes a new ``wandb/offline-run-<time>-<id>``), so a resumed run logs the epochs its
checkpoint holds into its new directory and then removes the earlier directories of the same run:
the run directory always holds one offline W&B run with the whole history, ready for ``wandb sync``.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig, OmegaConf

from training.config import ConfigError, resolved

HISTORY_NAME = "history.jsonl"
SUMMARY_NAME = "summary.json"
LOG_NAME = "train.log"


#: ``logger.wandb.mode``
WANDB_MODES = ("offline", "online", "disabled")
#: what W&B itself accepts in the WANDB_MODE environment variable (wandb.sdk.wandb_settings)
WANDB_ENV_MODES = ("online", "offline", "disabled", "dryrun", "run", "shared")


def wandb_mode(cfg: DictConfig) -> str:
    """The W&B mode a run uses: ``WANDB_MODE`` in the environment wins over ``logger.wandb.mode``
    (it is how users and CI turn W&B off)."""
    return os.environ.get("WANDB_MODE", cfg.logger.wandb.mode)


def wandb_credentials_found() -> bool:
    """Whether an online W&B run could log in: ``WANDB_API_KEY`` (or an identity token file) in the
    environment, or the entry ``wandb login`` writes into ``~/.netrc`` for ``WANDB_BASE_URL``.
    Without them ``wandb.init`` fails after the run started (or waits on a prompt)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    from wandb.sdk.lib.wbauth import read_netrc_auth

    return read_netrc_auth(host=os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")) is not None


#: an interpolation that reads the environment (OmegaConf's resolver; ``${oc.env:NAME}`` or ``${oc.env:NAME,default}``)
ENVIRONMENT_INTERPOLATION = re.compile(r"\$\{\s*oc\.env\s*:")
#: a value that is one such interpolation and nothing else
ONE_ENVIRONMENT_VALUE = re.compile(r"\$\{\s*oc\.env\s*:[^${}]*\}")


def _environment_number(text: str) -> int | float | bool | None:
    """The value of ``${oc.env:NAME}`` when it reads as a number or true/false (a seed from
    ``SLURM_ARRAY_TASK_ID``); None for text (a token, a path) or a variable that is not set."""
    try:
        value = str(OmegaConf.to_container(OmegaConf.create({"v": text}), resolve=True)["v"])
    except Exception:
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            number = kind(value)
        except ValueError:
            continue
        return number if math.isfinite(number) else None
    return None


def recorded(cfg: DictConfig | dict, numbers: bool = True) -> dict:
    """The config as records keep it (``summary.json``, a checkpoint's config, W&B's config, archived
    records, what the analysis reads): every interpolation resolved except those that read the
    environment, which stay as written (``${oc.env:NAME}``), as does any value that refers to one.
    A token in the environment never reaches a file; the run itself uses the resolved value.

    ``numbers``: in the run's own process, a value that is a single ``${oc.env:NAME}`` whose content
    reads as a number or true/false (``trainer.seed=${oc.env:SLURM_ARRAY_TASK_ID}``) is recorded as
    that number, so that the run can be compared (a secret in a number-typed key is not supported).
    Readers of a run's files pass ``numbers=False``: their environment is not the run's."""

    def keep(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: keep(v) for k, v in node.items()}
        if isinstance(node, list):
            return [keep(v) for v in node]
        if isinstance(node, str) and ENVIRONMENT_INTERPOLATION.search(node):
            number = _environment_number(node) if numbers and ONE_ENVIRONMENT_VALUE.fullmatch(node.strip()) else None
            return number if number is not None else node.replace("${", "\\${")  # escaped: resolves to the text as written
        return node

    plain = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    return OmegaConf.to_container(OmegaConf.create(keep(plain)), resolve=True)  # type: ignore[return-value]


def check_wandb(cfg: DictConfig) -> None:
    """The W&B mode (``logger.wandb.mode``, or ``WANDB_MODE`` in the environment) is one W&B knows,
    and an online run has credentials: else a :class:`ConfigError` before any work starts."""
    if cfg.logger.wandb.mode not in WANDB_MODES:
        raise ConfigError(f"logger.wandb.mode={cfg.logger.wandb.mode!r} is not valid; allowed values: {', '.join(WANDB_MODES)}")
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode is not None and env_mode not in WANDB_ENV_MODES:
        raise ConfigError(f"WANDB_MODE={env_mode!r} (in the environment, it wins over logger.wandb.mode) is not valid; allowed values: "
                          f"{', '.join(WANDB_ENV_MODES)} (unset it to use logger.wandb.mode)")
    if wandb_mode(cfg) in ("online", "run") and not wandb_credentials_found():
        raise ConfigError(
            "logger.wandb.mode=online needs W&B credentials and none were found (no WANDB_API_KEY, no `wandb login` "
            "entry in ~/.netrc): run `wandb login` or set WANDB_API_KEY, or use logger=offline and `wandb sync` the run later"
        )


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def wandb_labels(cfg: DictConfig, world_size: int = 1) -> tuple[str, str, list[str]]:
    """The W&B run name, group and tags. The group is the run's table cell as compare.py keys it
    (:func:`training.cell.cell_name`: experiment, setting, target, epochs and every key in which the
    run differs from its position's defaults, e.g. ``rigl_ham small 90% 2ep [ham.alpha=40,
    trainer.epochs=2]``), so two runs that compare.py keeps apart never share a group; the name
    adds the seed. Tags: method, Sign-In, HAM, optimizer, target sparsity, setting, epochs.
    ``logger.wandb.group`` replaces the group, ``logger.wandb.tags`` are added to the tags. Read
    from the :func:`recorded` config: text read from the environment stays ``${oc.env:NAME}`` here
    too (a number, such as a job id, is its value)."""
    from training.cell import cell_name, defaults, experiment_config, setting_of, target_of, variant  # cell reads trajectory, which reads this

    c = recorded(cfg)
    s, w = c["sparsity"], c["logger"]["wandb"]
    sparse = s["method"] != "dense"
    target = f"{s['target']:g}" if isinstance(s["target"], (int, float)) else s["target"]
    setting = setting_of(c["data"]["name"])
    config = resolved(cfg)
    numeric_target = target_of(config["sparsity"])
    keys = variant(experiment_config(config, world_size), defaults(c["name"], setting, numeric_target))
    group = cell_name(c["name"], setting, numeric_target, int(config["trainer"]["epochs"]), keys)
    name = f"{group} seed{c['trainer']['seed']}"
    tags = [
        f"method:{s['method']}",
        f"signin:{'on' if s['sign_in'] else 'off'}",
        f"ham:{'on' if c['ham']['enabled'] else 'off'}",
        f"optimizer:{c['optimizer']['name']}",
        f"sparsity:{target}" if sparse else "sparsity:0",
        f"setting:{setting}",
        f"epochs:{c['trainer']['epochs']}",
    ]
    return name, str(w["group"] or group), tags + [str(t) for t in w["tags"] if str(t) not in tags]


class RunRecords:
    """Records of one run; ``history`` holds the epochs a resumed checkpoint already finished."""

    def __init__(self, run_dir: Path, cfg: DictConfig, enabled: bool, run_id: str, history: list[dict[str, Any]],
                 world_size: int = 1) -> None:
        self.run_dir, self.cfg, self.enabled = run_dir, cfg, enabled
        self.wandb_run = None
        mode = wandb_mode(cfg)
        if enabled and mode != "disabled":
            import wandb

            config = recorded(cfg)  # ${oc.env:...} as written: no token from the environment reaches W&B
            w = config["logger"]["wandb"]
            name, group, tags = wandb_labels(cfg, world_size)
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

    def keep(self, run_dir: Path, command: str | None = None) -> None:
        """Write the log into ``run_dir`` from now on, after a header line with ``command`` (the
        process's own command line if not given)."""
        self.file = open(run_dir / LOG_NAME, "a", buffering=1)
        command = command or " ".join(sys.argv)
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
