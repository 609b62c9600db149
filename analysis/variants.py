"""Which runs may be averaged, and the label of each variant (:mod:`training.cell` owns the rules).

Runs at one table position (setting, experiment, target sparsity, epochs) whose experiment configs
differ are *variants*: each is a cell of its own, labelled with every key in which it differs from
the defaults of its position (``data.train_subset=6000, ham.alpha=40``), whether
or not the other runs share them; never one mean.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from analysis.runs import Run
from training import cell
from training.config import flatten
from training.trajectory import matches

differences = cell.differences


def experiment_config(run: Run) -> dict[str, Any]:
    """The run's experiment config (:func:`training.cell.experiment_config`), with its ``world_size``."""
    return cell.experiment_config(run.config, int((run.summary or {}).get("world_size") or 1))


def defaults_of(run: Run) -> dict[str, Any] | None:
    """The experiment config of the defaults of the run's position (:func:`training.cell.defaults`)."""
    return cell.defaults(run.experiment, run.setting, run.target)


def _groups(runs: list[Run], ignore: tuple[str, ...]) -> tuple[dict[str, list[Run]], dict[str, dict[str, Any]]]:
    """The runs by experiment config (less the ``ignore`` keys): members and config per group."""
    groups: dict[str, list[Run]] = {}
    configs: dict[str, dict[str, Any]] = {}
    for run in runs:
        config = {k: v for k, v in experiment_config(run).items() if not matches(k, ignore)}
        key = json.dumps(config, sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
        configs[key] = config
    return groups, configs


def _differing(configs: Iterable[dict[str, Any]]) -> list[str]:
    """The keys whose values are not the same in all ``configs``."""
    configs = list(configs)
    every = sorted({k for c in configs for k in c})
    return [k for k in every if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]


def split(runs: list[Run], ignore: Iterable[str] = ()) -> dict[str, list[Run]]:
    """The runs grouped by experiment config (less the ``ignore`` keys), each group under its label:
    the keys in which it differs from its position's defaults (``""``: none). Where a position has no
    defaults to compare with (a ``name`` that is no experiment), or two groups of different positions
    would share a label, the keys in which the groups differ are named too: a label is one group."""
    groups, configs = _groups(runs, tuple(ignore))
    among = _differing(configs.values())
    shown: dict[str, dict[str, Any]] = {}
    for key, members in groups.items():
        default = defaults_of(members[0])
        if default is None:
            shown[key] = {k: configs[key].get(k) for k in among}
        else:
            recorded = {*flatten(members[0].config), "world_size"}  # a key filled in for an older record (ADDED_KEYS) is not its own
            shown[key] = {k: v for k, v in cell.variant(configs[key], default).items() if k in recorded}
    if len({cell.label(s) for s in shown.values()}) < len(groups):  # positions with other defaults in one call
        shown = {key: {**s, **{k: configs[key].get(k) for k in among}} for key, s in shown.items()}
    return {cell.label(shown[key]): members for key, members in groups.items()}


def differing_labels(runs: list[Run], ignore: Iterable[str] = ()) -> list[str]:
    """For a message that refuses to average ``runs``: per group of equal experiment configs, the
    keys in which the groups differ, with this group's values (``optimizer.lr=0.05 / optimizer.lr=0.1``)."""
    _, configs = _groups(runs, tuple(ignore))
    among = _differing(configs.values())
    return [cell.label({k: c.get(k) for k in among}) for c in configs.values()]
