"""Launch every cell x seed of one of the paper's tables as Hydra multiruns of train.py, and
calibrate the presets of the knob-driven methods.

    python scripts/paper_tables.py table3 --dry-run                      # list the jobs and the GPU-hours
    python scripts/paper_tables.py table3 --launcher slurm -- hydra.launcher.partition=gpu data.root=/data/imagenet_ffcv
    python scripts/paper_tables.py table4 --setting small --launcher local
    python scripts/paper_tables.py table4 --calibrate --launcher slurm -- ...   # calibrate what Table 4 lacks, then run it
    python scripts/paper_tables.py calibrate str_ham --dry-run           # the calibration's runs and GPU-hours
    python scripts/paper_tables.py calibrate str --setting small         # measure the small setting's STR presets

Hydra overrides after ``--`` apply to every job (``hydra.*`` ones configure the launch).

Tables: ``table3`` (dense ResNet-50: baseline/HAM, with/without SAM, 100 and 200 epochs), ``table4``
(random PaI, AC/DC, RiGL, each plain / +Sign-In / +HAM; spred; PILoT; STR +- HAM; at 80/90/95 %),
``oneshot`` (the dense baseline and HAM runs that the one-shot prunability table prunes, then
``scripts/oneshot_prune.py`` on every seed of them). ``--setting small`` runs each on Fashion-MNIST (2 CPU
cores); there the 200-epoch column of Table 3 doubles the small run (20 epochs).

``calibrate <str|str_ham|pilot|spred>`` sweeps the method's knob over a one-seed grid, reads the
value for each target off it, verifies it at the table's seeds and writes the presets into the
setting's calibration file (``sparsity.calibration``), with a report and the runs' records
(analysis/calibration.py states the rules).

Every job's directory is ``multirun/paper_<setting>/<name>/<overrides>`` (calibrations:
``multirun/calibrate_<setting>/<method>/...``): rerunning the same command skips finished runs and
resumes unfinished ones (from the step where a signal stopped them). Cells without a preset for
their target wait for a calibration (listed with the command that measures one) and are not
launched. GPU-hours come from ``configs/cluster/throughput.yaml``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import pickle
import shlex
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NoReturn

from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.config import compose_config, set_overrides  # noqa: E402
from analysis import runs as R  # noqa: E402
from analysis.calibration import (  # noqa: E402
    BY_EXPERIMENT, CALIBRATIONS, TOLERANCE, Calibration, CalibrationSearch, value_text, write_presets,
)
from analysis.stats import mean_std, pct  # noqa: E402
from analysis.tables import TABLE3_EXPERIMENTS, TABLE4_EXPERIMENTS, TARGETS  # noqa: E402
from scripts.command_pool import check_sweep_exit, run_command  # noqa: E402
from training.config import ConfigError, validate, validate_sparsity  # noqa: E402
from training.presets import PRESET_KEYS, CalibrationFileError, apply_preset, calibrate_command, preset_for, read_calibration  # noqa: E402
from training.records import SUMMARY_NAME  # noqa: E402
from training.rundir import CHECKPOINT_NAME, FAILED_NAME, job_dirname  # noqa: E402
from training.trajectory import trajectory_config, without_non_trajectory_keys  # noqa: E402

THROUGHPUT = REPO / "configs" / "cluster" / "throughput.yaml"
#: the key every table sweeps last (its jobs share their configuration but for it)
SEED_KEY = "trainer.seed"


@functools.cache
def throughput_profile() -> DictConfig:
    """``configs/cluster/throughput.yaml``, read once; its figures must be positive, finite numbers
    (one that is not stops the command naming the key)."""
    profile = OmegaConf.load(THROUGHPUT)
    figures = {key: profile.get(key) for key in ("gpu_hours_per_epoch", "gpus_per_job", "small_seconds_per_epoch")}
    figures.update({f"step_cost.{k}": v for k, v in (profile.get("step_cost") or {}).items()})
    for key, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            stop(f"{key}={value!r} in {THROUGHPUT} is not valid: it must be a positive number")
    return profile


@dataclass
class Cell:
    """One multirun: an experiment with its fixed overrides, swept over ``sweep`` (key -> values)."""

    experiment: str
    overrides: list[str] = field(default_factory=list)
    sweep: dict[str, list[str]] = field(default_factory=dict)


def cells(table: str, setting: str) -> list[Cell]:
    small = ["setting=small"] if setting == "small" else []
    if table == "table3":
        long = ["trainer.epochs=20"] if setting == "small" else []  # the small run is 10 epochs: double it
        return [Cell(e, small) for e in TABLE3_EXPERIMENTS] + [Cell(f"{e}_200ep", small + long) for e in TABLE3_EXPERIMENTS]
    if table == "table4":
        return [Cell(e, small, {"sparsity.target": [f"{t:g}" for t in TARGETS]}) for e in TABLE4_EXPERIMENTS]
    if table == "oneshot":
        return [Cell(e, small) for e in ("dense", "dense_ham")]
    raise ValueError(f"unknown table {table!r}")


@dataclass
class Job:
    experiment: str
    overrides: list[str]  # everything but the experiment, as Hydra gets it
    run_dir: Path
    epochs: int
    gpu_hours: float
    refused: str | None
    #: the composed configuration (presets filled in) that the cell's jobs of other seeds share: read it
    #: for anything but the seed (its own configuration, :attr:`cfg`, is made when asked)
    shared: DictConfig
    seed: str | None = None  # the job's ``trainer.seed`` override (None: the shared config's seed)
    swept: tuple[str, ...] = ()  # the keys the multirun sweeps (the others are fixed)
    calibrate: str | None = None  # no preset for its target: the calibration that measures one
    derived: bool = False  # its preset is carried over from another setting, not measured
    wall_hours: float = 0.0  # its wall-clock time on the profile (configs/cluster/throughput.yaml)

    @cached_property
    def cfg(self) -> DictConfig:
        """Its own configuration: the shared one with its seed."""
        if self.seed is None:
            return self.shared
        cfg = copy.deepcopy(self.shared)
        set_overrides(cfg, [f"{SEED_KEY}={self.seed}"])
        return cfg

    @cached_property
    def trajectory(self) -> dict:
        """Its configuration as a finished run's summary.json records it, less the keys that do not
        change what is trained (computed once: the listing, the count and the launch all ask)."""
        return trajectory_config(self.cfg)


#: the keys Hydra leaves out of a job's directory name (configs/train.yaml)
EXCLUDED = set(OmegaConf.load(REPO / "configs" / "train.yaml").hydra.job.config.override_dirname.exclude_keys)


def override_dirname(overrides: list[str]) -> str:
    """A job's directory name as ``${job_dirname:}`` gives it (training.rundir.job_dirname)."""
    return job_dirname(overrides, sorted(EXCLUDED))


def is_hydra_override(override: str) -> bool:
    """``hydra.*`` and ``hydra/...`` overrides configure the launch, not the job (nor its directory)."""
    return override.lstrip("+~").startswith(("hydra.", "hydra/"))


def expand(table: str, setting: str, seeds: int, sweep_dir: Path, extra: list[str], first_seed: int = 0) -> list[Job]:
    """Every job of the table (seeds ``first_seed`` .. ``seeds - 1``), checked (``validate``) and placed
    where Hydra will put it."""
    return expand_cells(cells(table, setting), setting, range(first_seed, seeds), sweep_dir, extra)


def expand_cells(table_cells: list[Cell], setting: str, seeds: range, sweep_dir: Path, extra: list[str]) -> list[Job]:
    """Every job of the cells for these seeds. Each cell's configuration is composed once and checked
    whole once (``validate``); its swept values (target, knob, ...) are set on copies of it, and where
    the sweep changes only ``sparsity.*`` keys a copy is checked again only there (``validate_sparsity``).
    The jobs of one copy differ only in the seed: they share it (:attr:`Job.shared`)."""
    throughput = throughput_profile()
    task_extra = [o for o in extra if not is_hydra_override(o)]
    jobs = []
    for cell in table_cells:
        sweep = {**cell.sweep, SEED_KEY: [str(s) for s in seeds]}
        winning = [o for o in task_extra if o.lstrip("+").split("=", 1)[0] in sweep]  # extra overrides win over swept values
        combos = [[]]
        for key, values in cell.sweep.items():
            combos = [c + [f"{key}={v}"] for c in combos for v in values]
        # copies by pickle: an OmegaConf config pickles with its types and flags, seven times faster than deepcopy
        composed = pickle.dumps(compose_config([f"+experiment={cell.experiment}", *cell.overrides, *task_extra]))
        only_sparsity = all(key.startswith("sparsity.") for key in cell.sweep)
        checked_whole = False
        for combo in combos:
            cfg = pickle.loads(composed)
            set_overrides(cfg, combo + winning)
            knob = PRESET_KEYS.get(cfg.sparsity.method)
            refused = calibrate = preset = None
            try:
                preset = preset_for(cfg)[0] if knob and cfg.sparsity[knob] is None else None  # reads the calibration file
                apply_preset(cfg)
                (validate_sparsity if checked_whole else validate)(cfg)
                checked_whole = only_sparsity
            except ConfigError as error:
                refused = str(error)
                if knob and cfg.sparsity[knob] is None and cell.experiment in BY_EXPERIMENT and not isinstance(error, CalibrationFileError):
                    calibrate = BY_EXPERIMENT[cell.experiment].name
            factor = throughput.step_cost.get(cfg.optimizer.name, 1.0)
            hours = 0.0 if setting == "small" else cfg.trainer.epochs * throughput.gpu_hours_per_epoch * factor
            wall = (cfg.trainer.epochs * throughput.small_seconds_per_epoch * factor / 3600 if setting == "small"
                    else hours / throughput.gpus_per_job)
            for seed in sweep[SEED_KEY]:
                overrides = cell.overrides + combo + [f"{SEED_KEY}={seed}"] + task_extra
                own = None if any(o.lstrip("+").startswith(SEED_KEY + "=") for o in winning) else seed
                run_dir = sweep_dir / cfg.name / override_dirname(overrides)
                jobs.append(Job(cell.experiment, overrides, run_dir, cfg.trainer.epochs, hours, refused, cfg, own, tuple(sweep), calibrate,
                                bool(preset and preset.derived), wall))
    return jobs


def check_launch(jobs: list[Job], setting: str, launcher: str, dry_run: bool, table: str) -> str | None:
    """Why the table cannot run as asked (one sentence), or None: ImageNet tables need ``data.root``
    with the data set's files, and a GPU unless they go to SLURM."""
    if setting != "imagenet" or not jobs:
        return None
    data = jobs[0].shared.data
    if data.root is None:
        return (f"data.root is not set: an ImageNet table reads ImageNet from FFCV files; write them with "
                f"scripts/write_ffcv.py and pass their folder after --, e.g. `python scripts/paper_tables.py {table} -- "
                f"data.root=/data/imagenet_ffcv`")
    root = Path(data.root)
    needed = ["train.beton", "val.beton"] if data.name == "ffcv_imagenet" else ["train", "val"]
    missing = [name for name in needed if not (root / name).exists()]
    if missing:
        return (f"data.root={root} is not valid: it has no {' and no '.join(missing)} (seen from this machine); point it at the "
                f"folder scripts/write_ffcv.py wrote" + (" (data=imagefolder: the folder with train/ and val/)" if data.name == "imagefolder" else ""))
    if launcher != "slurm" and not dry_run:
        import torch

        if not torch.cuda.is_available():
            return (f"--launcher {launcher} would train ResNet-50 on ImageNet on this machine, which has no GPU: submit the jobs to "
                    f"SLURM with `python scripts/paper_tables.py {table} --launcher slurm -- hydra.launcher.partition=<partition> "
                    f"data.root={root}`")
    return None


def status(job: Job) -> str:
    if job.calibrate:
        return "calibrate"
    if job.refused:
        return "refused"
    if (job.run_dir / SUMMARY_NAME).exists() and not (job.run_dir / FAILED_NAME).exists():
        return "done" if finished_as_configured(job) else "changed"
    return "resume" if (job.run_dir / CHECKPOINT_NAME).exists() else "new"


def finished_as_configured(job: Job) -> bool:
    """Whether the run's ``summary.json`` was written by the configuration the job has now (its
    trajectory keys); a changed experiment file, or a damaged summary, is launched again and the
    run itself says what it finds (a checkpoint of another configuration is refused, listed)."""
    try:
        recorded = json.loads((job.run_dir / SUMMARY_NAME).read_text())["config"]
        return without_non_trajectory_keys(recorded) == job.trajectory
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def multirun_commands(jobs: list[Job], launcher: str, sweep_dir: Path, extra: list[str]) -> list[list[str]]:
    """One multirun per experiment and fixed overrides, over the values its launched jobs take; a
    multirun whose jobs are all done is left out (a rerun starts no process, nor a SLURM job, for it)."""
    groups: dict[tuple[str, tuple[str, ...]], dict[str, list[str]]] = {}
    pending: set[tuple[str, tuple[str, ...]]] = set()
    for job in jobs:
        if job.refused:
            continue
        fixed = tuple(o for o in job.overrides if o.split("=", 1)[0] not in job.swept and o not in extra)
        if status(job) != "done":
            pending.add((job.experiment, fixed))
        swept = groups.setdefault((job.experiment, fixed), {})
        for o in job.overrides:
            key, value = o.split("=", 1)
            if key in job.swept and o not in extra and value not in swept.setdefault(key, []):
                swept[key].append(value)
    commands = []
    for (experiment, fixed), swept in groups.items():
        if (experiment, fixed) not in pending:
            continue
        sweeps = [f"{k}={','.join(v)}" for k, v in swept.items()]
        launch = [] if launcher == "basic" else [f"hydra/launcher={launcher}"]
        commands.append([sys.executable, "train.py", "--multirun", f"+experiment={experiment}", *fixed, *sweeps, *launch,
                         f"hydra.sweep.dir={sweep_dir}", *extra])
    return commands


def print_jobs(jobs: list[Job], setting: str) -> None:
    for job in jobs:
        state = status(job)
        line = f"{state:9s} {job.run_dir}  ({job.epochs} epochs, {job_cost(job, setting)})"
        line += "  preset derived, not measured" if job.derived else ""
        if job.calibrate:
            line += f"\n          no preset for its target yet: `{calibrate_command(job.shared)}` measures one"
        elif job.refused:
            line += f"\n          {job.refused}"
        print(line)


def launch(jobs: list[Job], launcher: str, sweep_dir: Path, extra: list[str], dry_run: bool) -> None:
    """Print (and unless ``dry_run`` run) the multiruns of the jobs that are not refused."""
    for command in multirun_commands(jobs, launcher, sweep_dir, extra):
        print("+", shlex.join([command[0], str(REPO / command[1]), *command[2:]]), flush=True)  # runnable from any directory
        if not dry_run:
            check_sweep_exit(run_command(command), command)


def hours(jobs: list[Job]) -> float:
    return sum(j.gpu_hours for j in jobs)


def job_cost(job: Job, setting: str) -> str:
    """A job's cost on the profile: GPU-hours and wall-clock hours (ImageNet), or wall-clock time (small)."""
    throughput = throughput_profile()
    if setting == "small":
        return f"about {duration(job.wall_hours)} on {throughput.small_machine}"
    return f"{job.gpu_hours:.1f} GPU-h, {job.wall_hours:.1f} h wall-clock on {throughput.gpus_per_job} GPUs"


def duration(hours_: float) -> str:
    """``20 s``, ``4 min``, ``2.5 h``."""
    seconds = hours_ * 3600
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{hours_:.1f} h"


def budget(runs: int, per_run: Job, setting: str) -> str:
    """What ``runs`` runs like ``per_run`` cost: GPU-hours (ImageNet) or wall-clock time run one after another (small)."""
    if setting == "small":
        return f"about {duration(runs * per_run.wall_hours)} one after another"
    return f"{runs * per_run.gpu_hours:,.0f} GPU-hours"


def verification_rounds(calibration: Calibration, rounds: int) -> int:
    """The verification rounds a calibration may take: up to ``rounds`` where the sparsity emerges
    from the knob (STR moves it along the grid's slope), one where a final prune reaches the target."""
    return rounds if calibration.emergent else 1


def calibration_runs(name: str, setting: str, targets: list[float], seeds: int, rounds: int) -> tuple[int, int]:
    """A calibration's runs: expected (the grid and one verification round) and at worst
    (:func:`verification_rounds`)."""
    calibration = CALIBRATIONS[name]
    grid = len(calibration.grids[setting]) * (1 if calibration.emergent else len(targets))
    per_round = len(targets) * seeds
    return grid + per_round, grid + verification_rounds(calibration, rounds) * per_round


def stop(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_table(args: argparse.Namespace, sweep_dir: Path) -> None:
    jobs = expand(args.command, args.setting, args.seeds, sweep_dir, args.extra)
    refusal = check_launch(jobs, args.setting, args.launcher, args.dry_run, args.command)
    if refusal and not args.dry_run:
        stop(refusal)
    needed = calibrations_needed(jobs)
    if needed and args.calibrate:
        for name, targets in needed.items():
            print(f"== calibrate {name} first (targets {' '.join(f'{t:g}' for t in targets)})")
            calibrate(CALIBRATIONS[name], args, targets)
        jobs = expand(args.command, args.setting, args.seeds, sweep_dir, args.extra)
    print_jobs(jobs, args.setting)
    launched = [j for j in jobs if not j.refused]
    todo = [j for j in launched if status(j) != "done"]
    waiting = [j for j in jobs if j.calibrate]
    summary = f"{len(jobs)} jobs: {len(launched) - len(todo)} done, {len(todo)} to run, {len(jobs) - len(launched) - len(waiting)} refused"
    summary += f", {len(waiting)} wait for a calibration" if waiting else ""
    if args.setting == "imagenet":
        summary += (f"; {hours(launched) + hours(waiting):,.0f} GPU-hours for the table, {hours(todo) + hours(waiting):,.0f} still to run "
                    f"({throughput_profile().source})")
    print(summary)
    needed = calibrations_needed(jobs)
    expected = worst = hours(todo) + hours(waiting)
    for name, targets in needed.items():
        per_run = next(j for j in jobs if j.experiment == CALIBRATIONS[name].experiment)
        runs, most = calibration_runs(name, args.setting, targets, args.seeds, args.rounds)
        expected, worst = expected + runs * per_run.gpu_hours, worst + most * per_run.gpu_hours
        at_worst = (f", {most} at worst ({args.rounds} rounds: {budget(most, per_run, args.setting)})" if most > runs
                    else " (one round: a final prune reaches the target)")
        print(f"calibration {name} (targets {' '.join(f'{t:g}' for t in targets)}): {runs} runs with one verification round "
              f"({budget(runs, per_run, args.setting)}){at_worst}; "
              f"`python scripts/paper_tables.py {args.command} --calibrate` runs it before the table")
    if args.setting == "imagenet" and needed:
        print(f"total still to run: {expected:,.0f} GPU-hours expected (the table and its calibrations, one verification round each), "
              f"{worst:,.0f} at worst (up to {args.rounds} rounds where the sparsity emerges from the knob)")
    elif args.setting == "small":
        print(f"total still to run: about {duration(sum(j.wall_hours for j in todo))} one after another on "
              f"{throughput_profile().small_machine}")
    if jobs and not launched and not waiting:
        stop(f"every job of {args.command} was refused, so nothing {'would run' if args.dry_run else 'ran'}; the first: {jobs[0].refused}")
    launch(jobs, args.launcher, sweep_dir, args.extra, args.dry_run)
    if refusal:  # a dry run: say what a launch would refuse
        print(f"note: a launch would stop here: {refusal}")
    if args.command == "oneshot":  # then every seed of the dense runs is pruned (the table gives mean ± std): listed by a dry run too
        runs = [str(j.run_dir) for j in launched]
        output = args.oneshot_output.resolve() if args.oneshot_output else sweep_dir / "oneshot.md"
        command = [sys.executable, "scripts/oneshot_prune.py", *runs, "--output", str(output)]
        print("+", shlex.join([command[0], str(REPO / command[1]), *command[2:]]), flush=True)
        if not args.dry_run:
            raise SystemExit(run_command(command))


def calibrations_needed(jobs: list[Job]) -> dict[str, list[float]]:
    """Per calibration, the targets whose cells have no preset or only a derived one."""
    needed: dict[str, set[float]] = {}
    for job in jobs:
        if job.calibrate or job.derived:
            needed.setdefault(BY_EXPERIMENT[job.experiment].name, set()).add(float(job.shared.sparsity.target))
    return {name: sorted(targets) for name, targets in needed.items()}


def calibrate(calibration: Calibration, args: argparse.Namespace, targets: list[float]) -> list[dict] | None:
    """Sweep the knob, read the value for each target off the grid, verify it with the table's seeds
    (STR: moving it along the grid's slope while the mean misses the target by more than
    :data:`TOLERANCE`), write the presets and the report. Returns the per-target results, or None
    when runs it needs have not run (a dry run, or records without them)."""
    setting, knob = args.setting, calibration.knob
    small = ["setting=small"] if setting == "small" else []
    # the jobs go into <sweep dir>/<experiment>/<overrides> (Hydra's sweep subdir names the experiment)
    sweep_dir = args.sweep_dir.resolve() if args.sweep_dir else REPO / "multirun" / f"calibrate_{setting}"
    grid = args.grid or list(calibration.grids[setting])
    replay = args.from_records.resolve() if args.from_records else None
    if replay and not replay.is_dir():
        stop(f"--from-records {args.from_records} is not valid: {'it is not a folder' if replay.exists() else 'no such folder'} "
             f"(the archived records of a calibration, e.g. results/records/calibration/{setting}_{calibration.name})")
    if args.presets_file:
        try:
            read_calibration(args.presets_file)  # before anything runs: the file is updated at the end
        except ValueError as error:
            stop(f"--presets-file {args.presets_file} is not valid: {error}")
    execute = not (args.dry_run or replay)

    def stage(table_cells: list[Cell], seeds: range, title: str) -> list[tuple[Job, dict | None]]:
        jobs = expand_cells(table_cells, setting, seeds, sweep_dir, args.extra)
        refused = [j for j in jobs if j.refused]
        if refused:
            stop(f"calibration {calibration.name}: {refused[0].refused}")
        refusal = check_launch(jobs, setting, args.launcher, not execute, f"calibrate {calibration.name}")
        if refusal and execute:
            stop(refusal)
        if refusal:
            print(f"note: a launch would stop here: {refusal}")
        print(f"-- {title}: {len(jobs)} runs ({budget(len(jobs), jobs[0], setting)})")
        if not replay:
            print_jobs(jobs, setting)
            launch(jobs, args.launcher, sweep_dir, args.extra, not execute)
        return [(job, run_result(job, replay)) for job in jobs]

    per_target = {} if calibration.emergent else {"sparsity.target": [f"{t:g}" for t in targets]}
    grid_runs = stage([Cell(calibration.experiment, small, {knob: [value_text(v) for v in grid], **per_target})], range(1),
                      f"grid of {knob} (one seed)")
    if any(r is None for _, r in grid_runs):
        missing = sum(r is None for _, r in grid_runs)
        per_round = len(targets) * args.seeds
        rounds = verification_rounds(calibration, args.rounds)
        runs, most = calibration_runs(calibration.name, setting, targets, args.seeds, args.rounds)
        print(f"{missing} grid runs have no result yet" + (f" in {replay}" if replay else "") +
              f"; then {'up to ' if rounds > 1 else ''}{rounds} verification round{'s' if rounds > 1 else ''} of {per_round} runs "
              f"({budget(per_round, grid_runs[0][0], setting)} each), at the values the grid gives: in all "
              f"{budget(runs, grid_runs[0][0], setting)} with one round, {budget(most, grid_runs[0][0], setting)} at worst")
        return None
    search = CalibrationSearch(calibration, targets, [(float(OmegaConf.select(job.shared, knob)), float(job.shared.sparsity.target), result)
                                                      for job, result in grid_runs])
    outside = search.unreached()
    if outside:
        reached = ", ".join(f"{100 * s:.1f} %" for _, s in sorted(search.points[outside[0]]))
        stop(f"the grid of {knob} does not reach sparsity.target={outside[0]:g} (its runs reached {reached}): "
             f"widen it with --grid")
    for number in range(1, args.rounds + 1):
        pending = search.pending()
        verify = stage([Cell(calibration.experiment, small + [f"{knob}={value_text(v)}"], {"sparsity.target": [f"{t:g}"]})
                        for t, v in pending.items()], range(args.seeds), f"verification round {number}: the values at the table's seeds")
        if any(r is None for _, r in verify):
            print("the verification runs have no result yet" + (f" in {replay}" if replay else ""))
            return None
        results = {t: [r for job, r in verify if float(job.shared.sparsity.target) == t and not r.get("failed")] for t in pending}
        for t, v in pending.items():
            if not results[t]:
                stop(f"every verification run of {knob}={value_text(v)} at sparsity.target={t:g} failed (see {sweep_dir})")
        search.record_round(number, results)
        if search.done():
            break
    missed, accepted = search.missed(), search.accepted
    presets_file = args.presets_file or Path(grid_runs[0][0].shared.sparsity.calibration)
    presets_file = presets_file if presets_file.is_absolute() else REPO / presets_file
    seeds = "" if args.seeds == build_parser().get_default("seeds") else f" --seeds {args.seeds}"
    command = f"python scripts/paper_tables.py calibrate {calibration.name} --setting {setting}{seeds}"
    results = [accepted[t] for t in targets if t in accepted]
    write_presets(presets_file, calibration, calibration.name.endswith("_ham"), results, command)
    report = args.report or REPO / "results" / "calibration" / f"{setting}_{calibration.name}.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(calibration_report(calibration, setting, grid_runs, search.rounds, accepted, command))
    if execute:
        records = args.records or REPO / "results" / "records" / "calibration" / f"{setting}_{calibration.name}"
        R.archive(sweep_dir, records)
        print(f"records: {records}")
    print(f"presets: {presets_file}\nreport: {report}")
    if missed:
        stop(f"sparsity.target={missed[0]:g}: the mean over the seeds still misses it by more than {100 * TOLERANCE:g} points after "
             f"{args.rounds} rounds (see {report}); run again with more --rounds or a finer --grid")
    return results


#: what a calibration reads from a finished run's record, each a fraction in [0, 1]: always, and where the method records it
REQUIRED_FRACTIONS = ("sparsity", "test_acc")
OPTIONAL_FRACTIONS = ("test_acc_before_prune", "pruned_mass_fraction")


def read_result(path: Path) -> dict:
    """A run's ``summary.json`` or archived record, read strictly: a JSON mapping, either a failed
    run's (``failed: true``) or one whose :data:`REQUIRED_FRACTIONS` (and the :data:`OPTIONAL_FRACTIONS`
    it has) are numbers in [0, 1]; anything else stops with one sentence naming the file."""
    again = "archive the runs again (or delete the file so that the run is made again)"
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = "it is empty" if path.is_file() and not path.stat().st_size else " ".join(str(error).split())[:160]
        stop(f"{path} is not a readable run record ({reason}): {again}")
    if not isinstance(result, dict):
        stop(f"{path} is not a run record (a JSON {type(result).__name__}, not a mapping): {again}")
    if result.get("failed") is True:
        return result
    for key in (*REQUIRED_FRACTIONS, *OPTIONAL_FRACTIONS):
        value = result.get(key)
        if (value is not None or key in REQUIRED_FRACTIONS) and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
            stop(f"{path} has {key}: {value!r}, which is not valid: a finished run records it as a fraction in [0, 1]; {again}")
    return result


def run_result(job: Job, replay: Path | None) -> dict | None:
    """A job's summary (``{"failed": True}`` for a run that failed), from its directory or, when
    replaying, from the archived record of the same directory name (:func:`read_result`); None if it has not run."""
    if replay:
        record = replay / f"{job.run_dir.parent.name}__{job.run_dir.name}.json"
        return read_result(record) if record.exists() else None
    if (job.run_dir / FAILED_NAME).exists():
        return {"failed": True}
    summary = job.run_dir / SUMMARY_NAME
    return read_result(summary) if summary.exists() else None


def calibration_report(calibration: Calibration, setting: str, grid_runs: list[tuple[Job, dict | None]], rounds: list[dict],
                       accepted: dict[float, dict], command: str) -> str:
    knob = calibration.knob
    how = ("the value for a target is where the piecewise-linear sparsity(value) through the grid reaches it; it is run at the "
           f"table's seeds and, while the mean misses the target by more than {100 * TOLERANCE:g} points, moved along the grid's slope "
           "and run again" if calibration.emergent else
           "per target the grid value with the best test accuracy after the final prune (which makes every run reach the target "
           "exactly), then run at the table's seeds")
    lines = [f"# Calibration of {calibration.name} ({setting} setting)", "",
             f"`{knob}` swept over a one-seed grid; {how} (analysis/calibration.py). Test top-1 % after the last epoch; "
             "mean ± sample std over the seeds.", f"Regenerate with `{command}`; from the committed records, without training: "
             f"add `--from-records results/records/calibration/{setting}_{calibration.name}`.", "", "## Grid", ""]
    if calibration.emergent:
        lines += [f"| {knob} | sparsity % | test top-1 % |", "|---:|---:|---:|"]
    else:
        lines += [f"| {knob} | target % | test top-1 before the prune % | after the prune % | ‖θ‖₁ pruned % |", "|---:|---:|---:|---:|---:|"]
    for job, r in sorted(grid_runs, key=lambda jr: (float(jr[0].shared.sparsity.target), float(OmegaConf.select(jr[0].shared, knob)))):
        cells = [value_text(float(OmegaConf.select(job.shared, knob)))]
        if calibration.emergent:
            cells += ["diverged", "–"] if r.get("failed") else [pct(r["sparsity"]), pct(r["test_acc"])]
        else:
            cells.append(f"{100 * float(job.shared.sparsity.target):g}")
            cells += ["diverged", "–", "–"] if r.get("failed") else [
                pct(r.get("test_acc_before_prune")), pct(r["test_acc"]), pct(r.get("pruned_mass_fraction"))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Verification", "", f"| target % | round | {knob} | seeds | sparsity % (min – max) | test top-1 % | next value |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in sorted(rounds, key=lambda r: (r["target"], r["round"])):
        sp = row["sparsities"]
        lines.append(f"| {100 * row['target']:g} | {row['round']} | {value_text(row['value'])} | {row['seeds']} | "
                     f"{mean_std(sp)} ({pct(min(sp))} – {pct(max(sp))}) | {mean_std(row['accs'])} | "
                     f"{value_text(row['next']) if 'next' in row else 'accepted' if accepted.get(row['target']) is row else 'missed'} |")
    lines += ["", "## Presets", "", f"| target % | {knob} |", "|---:|---:|"]
    lines += [f"| {100 * t:g} | {value_text(row['value'])} |" for t, row in sorted(accepted.items())]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command line (every option says what it does)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["table3", "table4", "oneshot", "calibrate"],
                        help="a table to run (table3 dense, table4 sparse, oneshot: table3's dense runs pruned), or calibrate a method's presets")
    parser.add_argument("method", nargs="?", choices=sorted(CALIBRATIONS), help="calibrate: the method whose presets to measure")
    parser.add_argument("--setting", choices=["imagenet", "small"], default="imagenet",
                        help="imagenet: ResNet-50 on ImageNet (FFCV files, a GPU cluster); small: LeNet-300-100 on Fashion-MNIST")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 of every cell (and of each verification round)")
    parser.add_argument("--launcher", choices=["slurm", "local", "basic"], default="basic",
                        help="slurm: one SLURM job per run; local: submitit on this machine; basic: one after another here")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs, their directories, GPU-hours and wall-clock time; launch nothing")
    parser.add_argument("--sweep-dir", type=Path, help="where the runs go (default: multirun/paper_<setting>, multirun/calibrate_<setting>)")
    parser.add_argument("--oneshot-output", type=Path, help="the one-shot table (default: oneshot.md in the sweep directory)")
    parser.add_argument("--calibrate", action="store_true", help="table4: first calibrate the presets its cells lack (or have only derived)")
    calibration = parser.add_argument_group("calibrate")
    calibration.add_argument("--targets", type=float, nargs="+",
                             help="calibrate: the target sparsities to measure presets for (default: 0.8 0.9 0.95); not for the tables")
    calibration.add_argument("--grid", type=float, nargs="+", help="the knob's values (default: the method's grid for the setting)")
    calibration.add_argument("--rounds", type=int, default=3, help="verification rounds at most (STR)")
    calibration.add_argument("--presets-file", type=Path, help="default: the setting's sparsity.calibration")
    calibration.add_argument("--report", type=Path, help="default: results/calibration/<setting>_<method>.md")
    calibration.add_argument("--records", type=Path, help="where the runs' records go (default: results/records/calibration/<setting>_<method>)")
    calibration.add_argument("--from-records", type=Path, help="decide from these archived records; train nothing")
    return parser


def main() -> None:
    parser = build_parser()
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # Hydra overrides for every job
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.extra = extra
    if args.seeds < 1:
        parser.error(f"--seeds={args.seeds} is not valid: it must be >= 1")
    if args.rounds < 1:
        parser.error(f"--rounds={args.rounds} is not valid: it must be >= 1")
    if (args.command == "calibrate") != (args.method is not None):
        parser.error("calibrate takes a method (one of " + ", ".join(sorted(CALIBRATIONS)) + "); the tables take none")
    if args.calibrate and args.command != "table4":
        parser.error("--calibrate is for table4 (the table whose cells have presets)")
    if args.targets is not None and args.command != "calibrate":
        parser.error(f"--targets is for calibrate: {args.command} runs the targets of its table"
                     + (f" ({', '.join(f'{t:g}' for t in TARGETS)})" if args.command == "table4" else " (it has none: its runs are dense)"))
    args.targets = list(TARGETS) if args.targets is None else args.targets
    bad = [t for t in args.targets if not 0 < t < 1]
    if bad:
        parser.error(f"--targets {bad[0]:g} is not valid: a target sparsity is in (0, 1), e.g. 0.9")
    if len(set(args.targets)) != len(args.targets):
        parser.error(f"--targets {' '.join(f'{t:g}' for t in args.targets)} is not valid: a target is given twice")
    if args.grid is not None and (len(args.grid) < 2 or len(set(args.grid)) != len(args.grid)):
        parser.error(f"--grid {' '.join(f'{v:g}' for v in args.grid)} is not valid: a calibration reads the value for a target off "
                     f"at least two different values of the knob, each given once")
    if args.grid is not None and args.command != "calibrate":
        parser.error("--grid is for calibrate")
    try:
        if args.command == "calibrate":
            calibrate(CALIBRATIONS[args.method], args, args.targets)
        else:
            run_table(args, args.sweep_dir.resolve() if args.sweep_dir else REPO / "multirun" / f"paper_{args.setting}")
    except ConfigError as error:  # an override after -- that Hydra cannot compose
        stop(f"{error} (in the overrides after --: {' '.join(args.extra)})")


if __name__ == "__main__":
    main()
