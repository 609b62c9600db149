"""Committed run records that today's command would no longer produce.

A record in ``results/records/<folder>/<experiment>__<overrides>.json`` was written by a command
that ran ``train.py +experiment=<experiment> <overrides>`` (the file name is the run directory's,
:func:`analysis.runs.record_name`). Composing that configuration today, with today's configs, presets
and calibration file (:func:`training.presets.apply_preset`), gives the run the command would train
now. A record whose experiment config (:func:`training.cell.experiment_config`) differs from it is
*stale*: a table built from it no longer shows what its command produces. Differences that are
deliberate (records kept at an earlier setting beside today's) are declared in :data:`KEPT`, each
with the file that says so to a reader.

A sparse method's own knobs (``sparsity.rigl_*``, ``str_*``, ``pilot_*``, ``spred_*``) mean nothing
to a run of another method, so they are not compared there.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from analysis.runs import from_summary
from analysis.variants import experiment_config
from training import cell
from training.config import CONFIGS_ROOT, ConfigError, compose_config, set_overrides
from training.presets import apply_preset

RECORDS = Path(__file__).resolve().parent.parent / "results" / "records"
#: the keys that do not change the experiment (the seed): left out of a recomposition
SEED_KEYS = ("trainer.seed", "sparsity.seed")
#: the sparsity keys that only one method (or family) reads, by the methods that read them
METHOD_KNOBS = {"rigl_": ("rigl",), "str_": ("str",), "pilot_": ("pilot",), "spred_": ("spred",), "mirror_": ("pilot", "spred")}


@dataclass(frozen=True)
class Kept:
    """Records kept at an earlier setting on purpose: the keys in which they may differ from today's
    command, and the committed file that tells a reader so (it must name the folder)."""

    folder: str
    keys: tuple[str, ...]
    said_in: str


KEPT = (
    Kept("paper-small-ham-alpha20", ("ham.alpha", "sparsity.str_weight_decay"), "results/compare/gains_small.md"),
    Kept("calibration/small_str_ham_alpha20", ("ham.alpha",), "results/README.md"),
)

#: the command that trains a folder's records again (``{experiments}``: the stale records' experiments)
RERUN = {
    "paper-small": "python scripts/small_suite.py --parts table3 table4 --experiments {experiments}",
    "ham-grid": "python scripts/small_experiments.py ham-grid",
    "ham-weight-decay": "python scripts/small_experiments.py ham-weight-decay",
    "signin-weight-decay": "python scripts/small_experiments.py signin-weight-decay",
    "mirror-presets": "python scripts/small_experiments.py mirror-presets",
    "claims": "python scripts/small_claims.py all",
    "calibration/small_str": "python scripts/paper_tables.py calibrate str --setting small",
    "calibration/small_str_ham": "python scripts/paper_tables.py calibrate str_ham --setting small --seeds 5",
    "calibration/small_pilot": "python scripts/paper_tables.py calibrate pilot --setting small",
    "calibration/small_spred": "python scripts/paper_tables.py calibrate spred --setting small",
}


@dataclass
class Stale:
    """A record whose experiment config differs from today's command's: the keys, each as
    ``key: recorded -> today``."""

    path: Path
    differences: list[str]

    @property
    def folder(self) -> str:
        return self.path.parent.relative_to(RECORDS).as_posix() if self.path.is_relative_to(RECORDS) else self.path.parent.name


def recorded_command(path: Path) -> tuple[str, list[str]]:
    """The experiment and the overrides (without the seeds) that a record's file name holds."""
    experiment, _, overrides = path.stem.partition("__")
    items = re.split(r",(?=[\w.+~/]+=)", overrides) if overrides else []
    return experiment, [o for o in items if o.split("=", 1)[0].lstrip("+~") not in SEED_KEYS]


class _Composer:
    """Today's experiment config for a recorded command: one Hydra composition per experiment and
    group choice; the dotted overrides are set on a copy (as ``scripts/paper_tables.py`` does)."""

    def __init__(self) -> None:
        self.composed: dict[tuple[str, ...], DictConfig | str] = {}

    def experiment_config(self, experiment: str, overrides: list[str]) -> dict[str, Any] | str:
        groups = [o for o in overrides if "." not in o.split("=", 1)[0]]
        values = [o for o in overrides if o not in groups]
        key = (experiment, *groups)
        if key not in self.composed:
            if not (CONFIGS_ROOT / "experiment" / f"{experiment}.yaml").exists():
                self.composed[key] = f"{experiment} is no experiment of configs/experiment/"
            else:
                try:
                    self.composed[key] = compose_config([f"+experiment={experiment}", *groups])
                except ConfigError as error:
                    self.composed[key] = str(error)
        base = self.composed[key]
        if isinstance(base, str):
            return base
        cfg = copy.deepcopy(base)
        try:
            set_overrides(cfg, values)
            apply_preset(cfg)
        except (ConfigError, ValueError) as error:
            return str(error)
        return cell.experiment_config(OmegaConf.to_container(cfg, resolve=True))


def _method_reads(key: str, method: str) -> bool:
    knob = key.removeprefix("sparsity.")
    owners = next((m for prefix, m in METHOD_KNOBS.items() if key.startswith("sparsity.") and knob.startswith(prefix)), None)
    return owners is None or method in owners


def stale(folders: list[Path]) -> list[Stale]:
    """The records in these folders whose experiment config differs from today's command's, less the
    differences :data:`KEPT` declares for their folder; a record that cannot be recomposed is stale
    with the reason."""
    composer = _Composer()
    out = []
    for folder in folders:
        kept = next((k.keys for k in KEPT if (RECORDS / k.folder).resolve() == folder.resolve()), ())
        for path in sorted(folder.glob("*.json")):
            summary = json.loads(path.read_text())
            run = from_summary(str(path), summary)
            if run.status != "finished":
                continue
            today = composer.experiment_config(*recorded_command(path))
            if isinstance(today, str):
                out.append(Stale(path, [f"cannot be composed today: {today}"]))
                continue
            recorded = experiment_config(run)
            method = recorded.get("sparsity.method", "dense")
            differ = [k for k in cell.differences(recorded, today, kept) if _method_reads(k, method)]
            if differ:
                out.append(Stale(path, [f"{k}: {recorded.get(k)} -> {today.get(k)}" for k in differ]))
    return out


def report(found: list[Stale]) -> str:
    """The stale records by folder, with what differs and the command that trains them again."""
    lines = []
    by_folder: dict[str, list[Stale]] = {}
    for s in found:
        by_folder.setdefault(s.folder, []).append(s)
    for folder, records in by_folder.items():
        experiments = sorted({recorded_command(s.path)[0] for s in records})
        differ = sorted({d for s in records for d in s.differences})
        command = RERUN.get(folder, "the command that wrote results/records/" + folder).format(experiments=" ".join(experiments))
        lines.append(f"results/records/{folder}: {len(records)} stale records ({', '.join(experiments)}; {'; '.join(differ[:6])}"
                     f"{' ...' if len(differ) > 6 else ''}): train them again with `{command}`")
    return "\n".join(lines)
