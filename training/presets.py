"""Per-target presets of the methods whose sparsity is steered by a knob (STR, PILoT, spred).

A setting lists presets (``sparsity.presets``, ``configs/setting/*.yaml``); a calibration file that
``python scripts/paper_tables.py calibrate`` writes (``sparsity.calibration``) wins over them. A run
takes the preset for its method, HAM and target into the knob (:data:`PRESET_KEYS`) unless the knob
was set: ``train.py`` calls :func:`apply_preset` before :func:`training.config.validate`, which
only checks (:func:`check_preset`).
"""

from __future__ import annotations

import functools
import math
import numbers
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from training.config import ConfigError, SparsityPreset

#: The knob through which each method reaches its target (STR's sparsity emerges from its weight
#: decay; PILoT and spred prune at the end, and their penalty decides how much that costs).
PRESET_KEYS = {"str": "str_weight_decay", "pilot": "pilot_alpha", "spred": "spred_weight_decay"}


REPO_DIR = Path(__file__).resolve().parent.parent  # a relative calibration path starts here
#: how far (a fraction) a run's achieved sparsity may lie from its target before it missed it
TARGET_TOLERANCE = 0.005
#: the keys of a recipe that change where a preset's knob takes a run: a preset is measured with the
#: setting's recipe (``scripts/paper_tables.py calibrate`` runs the position's defaults)
RECIPE_KEYS = ("model.name", "data.name", "data.train_subset", "trainer.epochs", "trainer.batch_size", "trainer.max_steps_per_epoch",
               "optimizer.name", "optimizer.lr", "schedule.name", "world_size")


def missed_target(sparsity: float | None, target: float | None) -> bool:
    """Whether a run's achieved sparsity lies more than :data:`TARGET_TOLERANCE` from its target."""
    return target is not None and sparsity is not None and abs(sparsity - target) > TARGET_TOLERANCE


class CalibrationFileError(ConfigError):
    """``sparsity.calibration`` names a file that breaks :func:`read_calibration`'s rules (a
    calibration cannot help there: the file must be fixed first)."""


def calibration_file(path: str) -> Path:
    """Where a ``sparsity.calibration`` path points (a relative one starts at the repository)."""
    return Path(path) if Path(path).is_absolute() else REPO_DIR / path


def _real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


#: the fields of a calibration file's entry that a run reads: the rule each value must follow
ENTRY_RULES = {
    "method": (lambda v: v in PRESET_KEYS, f"one of {', '.join(PRESET_KEYS)} (the methods with a preset knob)"),
    "ham": (lambda v: v is None or isinstance(v, bool), "true, false or null (a YAML boolean, not a string)"),
    "target": (lambda v: _real(v) and 0 < v < 1, "a number in (0, 1)"),
    "value": (lambda v: _real(v) and v >= 0, "a finite number >= 0"),
    "derived": (lambda v: isinstance(v, bool), "true or false"),
}


def read_calibration(file: Path) -> list[dict]:
    """The entries of a calibration file, read strictly: a YAML mapping (no tags that build Python
    objects) whose ``presets`` is a list of mappings with ``method``, ``ham``, ``target`` and
    ``value`` following :data:`ENTRY_RULES` (further keys say how each was measured), at most one
    entry per method, HAM setting and target. A file that does not exist has none. Anything else
    is a :class:`ValueError` that names the file and the entry."""
    if not file.exists():
        return []
    again = "write it again with `python scripts/paper_tables.py calibrate`, or fix it by hand"
    if not file.is_file() and not file.is_dir():  # a FIFO would block the read (a directory is said below)
        raise ValueError(f"{file} cannot be read as a calibration file (it is not a regular file: a FIFO, a socket or a device): {again}")
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())[:200] if not isinstance(error, IsADirectoryError) else "it is a directory"
        raise ValueError(f"{file} cannot be read as a calibration file ({reason}): {again}") from None
    if not isinstance(data, dict) or not isinstance(data.get("presets"), list):
        raise ValueError(f"{file} is not a calibration file (a YAML mapping whose `presets:` lists method, ham, target, value): {again}")
    seen: dict[tuple, int] = {}
    for number, entry in enumerate(data["presets"], 1):
        if not isinstance(entry, dict):
            raise ValueError(f"entry {number} of {file} is {entry!r}, not a mapping of method, ham, target, value: {again}")
        for key, (rule, meaning) in ENTRY_RULES.items():
            if (key in entry or key not in ("ham", "derived")) and not rule(entry.get(key)):
                raise ValueError(f"entry {number} of {file} has {key}: {entry.get(key)!r}, which is not valid: it must be {meaning}; {again}")
        same = (entry["method"], entry.get("ham"), round(float(entry["target"]), 6))
        if same in seen:
            raise ValueError(f"entries {seen[same]} and {number} of {file} are both for method {same[0]}, ham {same[1]}, target "
                             f"{same[2]:g}: keep one of them, or {again.split(', or ')[0]}")
        seen[same] = number
    return data["presets"]


def calibrated_presets(path: str | None) -> list[SparsityPreset]:
    """The presets in a calibration file (``sparsity.calibration``; none if it does not exist yet),
    read by :func:`read_calibration` once per version of the file (a planner asks for every job); a
    file that breaks its rules is a :class:`CalibrationFileError`."""
    if not path:
        return []
    file = calibration_file(path)
    try:
        stamp = (file.stat().st_mtime_ns, file.stat().st_size)
    except OSError:  # none yet, or unreadable: read_calibration says which
        stamp = None
    return list(_calibrated_presets(path, file, stamp))


@functools.lru_cache(maxsize=16)
def _calibrated_presets(path: str, file: Path, stamp: tuple[int, int] | None) -> tuple[SparsityPreset, ...]:
    try:
        entries = read_calibration(file)
    except ValueError as error:
        raise CalibrationFileError(f"sparsity.calibration={path} is not valid: {error}") from None
    return tuple(SparsityPreset(method=e["method"], target=float(e["target"]), value=float(e["value"]), ham=e.get("ham"),
                                derived=e.get("derived", False)) for e in entries)


def preset_for(cfg: DictConfig) -> tuple[SparsityPreset | None, str]:
    """The preset a run at ``cfg``'s method, HAM and target would take, and where it is written
    (the calibration file wins over the setting's list); ``(None, "")`` when there is none."""
    s = cfg.sparsity
    ham = bool(cfg.ham.enabled)
    sources = [(calibrated_presets(OmegaConf.select(cfg, "sparsity.calibration")), str(OmegaConf.select(cfg, "sparsity.calibration"))),
               (list(s.presets), "the setting's sparsity.presets")]
    for presets, where in sources:
        for p in presets:
            if p.method == s.method and (p.ham is None or p.ham == ham) and abs(p.target - s.target) < 1e-9:
                return p, where
    return None, ""


def calibrate_command(cfg: DictConfig) -> str:
    """The command that measures the missing preset of ``cfg``'s method (and HAM) in its setting."""
    s = cfg.sparsity
    name = f"{s.method}_ham" if s.method == "str" and cfg.ham.enabled else s.method
    small = " --setting small" if Path(str(s.calibration or "")).stem == "small" else ""
    return f"python scripts/paper_tables.py calibrate {name}{small} --targets {s.target:g}"


def check_preset(cfg: DictConfig) -> float | None:
    """The value the method's knob (:data:`PRESET_KEYS`) takes: the one set, else the preset for
    the target (calibrated or the setting's); ``None`` for a method without a knob. A target without
    a preset is a :class:`ConfigError` (instead of a run at another sparsity) that names the
    calibration command that measures one. The config is not changed."""
    s = cfg.sparsity
    key = PRESET_KEYS.get(s.method)
    if key is None or s[key] is not None:
        return None if key is None else s[key]
    preset, _ = preset_for(cfg)
    if preset is None:
        ham = bool(cfg.ham.enabled)
        everything = calibrated_presets(OmegaConf.select(cfg, "sparsity.calibration")) + list(s.presets)
        own = [p for p in everything if p.method == s.method and (p.ham is None or p.ham == ham)]
        targets = ", ".join(sorted({f"{p.target:g}" for p in own}))
        with_ham = f" with ham.enabled={str(ham).lower()}" if any(p.ham is not None for p in everything if p.method == s.method) else ""
        has = f"presets of sparsity.{key} for the targets {targets}" if own else f"no preset of sparsity.{key}"
        if s.calibration and not calibration_file(s.calibration).exists():
            has += f" (its calibration file sparsity.calibration={s.calibration} does not exist: {calibration_file(s.calibration)})"
        raise ConfigError(
            f"sparsity.target={s.target} is not valid for sparsity.method={s.method}{with_ham}: this setting has {has}; "
            f"measure one with `{calibrate_command(cfg)}`, or set sparsity.{key} yourself"
        )
    return preset.value


def apply_preset(cfg: DictConfig) -> None:
    """Fill the method's knob (:data:`PRESET_KEYS`) from the preset for the target (calibrated or the
    setting's) unless it was set; a target without a preset leaves it null, and
    :func:`training.config.validate` refuses it (:func:`check_preset`), after the checks before it."""
    key = PRESET_KEYS.get(cfg.sparsity.method)
    if key is not None and cfg.sparsity[key] is None:
        preset, _ = preset_for(cfg)
        if preset is not None:
            cfg.sparsity[key] = preset.value


def fill_presets_when_composed() -> None:
    """Make Hydra's composition fill the preset knobs (:func:`apply_preset`), so that
    ``python train.py ... --cfg job`` prints the value a run uses instead of ``null``. Hydra has no
    hook after composition, so its ``Hydra.compose_config`` is wrapped (``tests/test_run_records.py``
    fails if a Hydra release changes that). A target without a preset stays ``null`` there; the run
    itself stops on it in :func:`check_preset`. Only the command line's composition is changed: Hydra's
    ``compose()`` API (``from_shell=False``: :func:`compose_config`, the planning tools, which set
    the target on copies of one composed cell afterwards) gets the knobs unfilled, also in a process
    that imported train.py."""
    from hydra._internal.hydra import Hydra

    compose = Hydra.compose_config
    if getattr(compose, "fills_presets", False):
        return

    def compose_with_presets(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        cfg = compose(self, *args, **kwargs)
        from_shell = kwargs.get("from_shell", args[4] if len(args) > 4 else True)
        if from_shell and OmegaConf.select(cfg, "sparsity.presets") is not None:
            try:
                apply_preset(cfg)
            except ConfigError:  # a damaged calibration file: the run itself names it
                pass
        return cfg

    compose_with_presets.fills_presets = True  # type: ignore[attr-defined]
    Hydra.compose_config = compose_with_presets  # type: ignore[method-assign]


def preset_recipe_warning(cfg: DictConfig, world_size: int = 1) -> str | None:
    """One sentence when the run's knob is a preset measured under another recipe than the run's
    (:data:`RECIPE_KEYS` against the defaults of its experiment and setting, which the calibration
    ran): its sparsity may miss the target. ``None`` when the knob was set, or the recipe is the
    calibration's."""
    from training.cell import defaults, experiment_config, setting_of
    from training.config import resolved

    s = cfg.sparsity
    key = PRESET_KEYS.get(s.method)
    preset, where = preset_for(cfg) if key is not None else (None, "")
    if preset is None or s[key] != preset.value:
        return None
    setting = setting_of(cfg.data.name)
    default = defaults(str(cfg.name), setting, float(s.target))
    if default is None:
        return None
    mine = experiment_config(resolved(cfg), world_size)
    differ = [k for k in RECIPE_KEYS if mine.get(k) != default.get(k)]
    if not differ:
        return None
    changes = ", ".join(f"{k}={mine.get(k)} (calibrated: {default.get(k)})" for k in differ)
    return (f"warning: sparsity.{key}={preset.value:g} is the preset for sparsity.target={s.target:g} from {where}, measured with "
            f"the {setting} setting's recipe, and this run differs in {changes}: its sparsity may miss the target; set "
            f"sparsity.{key} for this recipe, or measure it with `{calibrate_command(cfg)}` and these overrides")
