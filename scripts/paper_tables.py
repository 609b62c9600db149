"""Launch every cell x seed of one of the paper's tables as Hydra multiruns of train.py.

    python scripts/paper_tables.py table3 --dry-run                      # list the jobs and the GPU-hours
    python scripts/paper_tables.py table3 --launcher slurm -- hydra.launcher.partition=gpu data.root=/data/imagenet_ffcv
    python scripts/paper_tables.py table4 --setting small --launcher local

Hydra overrides after ``--`` apply to every job (``hydra.*`` ones configure the launch).

Tables: ``table3`` (dense ResNet-50: baseline/HAM, with/without SAM, 100 and 200 epochs), ``table4``
(random PaI, AC/DC, RiGL, each plain / +Sign-In / +HAM; spred; PILoT; STR +- HAM; at 80/90/95 %),
``oneshot`` (the dense baseline and HAM runs that the one-shot prunability table prunes, then
``scripts/oneshot_prune.py`` on every seed of them). ``--setting small`` runs each on Fashion-MNIST (2 CPU
cores); there the 200-epoch column of Table 3 doubles the small run (20 epochs).

Every job's directory is ``multirun/paper_<setting>/<name>/<overrides>``: rerunning the same command
skips finished runs and resumes unfinished ones (from the step where a signal stopped them). Cells
whose configuration is refused (STR at a target without a preset) are listed with the reason and
not launched. GPU-hours come from ``configs/cluster/throughput.yaml``.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.config import compose_config  # noqa: E402
from training.config import ConfigError, validate  # noqa: E402

THROUGHPUT = REPO / "configs" / "cluster" / "throughput.yaml"
DENSE = ["dense", "dense_ham", "dense_sam", "dense_sam_ham"]
SPARSE = ["random", "random_signin", "random_ham", "acdc", "acdc_signin", "acdc_ham", "rigl", "rigl_signin", "rigl_ham",
          "spred", "pilot", "str", "str_ham"]
TARGETS = ["0.8", "0.9", "0.95"]


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
        return [Cell(e, small) for e in DENSE] + [Cell(f"{e}_200ep", small + long) for e in DENSE]
    if table == "table4":
        return [Cell(e, small, {"sparsity.target": TARGETS}) for e in SPARSE]
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
    cfg: DictConfig  # the composed configuration (presets filled in)


#: the keys Hydra leaves out of a job's directory name (configs/train.yaml)
EXCLUDED = set(OmegaConf.load(REPO / "configs" / "train.yaml").hydra.job.config.override_dirname.exclude_keys)


def override_dirname(overrides: list[str]) -> str:
    """Hydra's ``job.override_dirname``: the overrides sorted, without the excluded keys."""
    return ",".join(sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+") not in EXCLUDED))


def is_hydra_override(override: str) -> bool:
    """``hydra.*`` and ``hydra/...`` overrides configure the launch, not the job (nor its directory)."""
    return override.lstrip("+~").startswith(("hydra.", "hydra/"))


def expand(table: str, setting: str, seeds: int, sweep_dir: Path, extra: list[str], first_seed: int = 0) -> list[Job]:
    """Every job of the table (seeds ``first_seed`` .. ``seeds - 1``), checked (``validate``) and placed
    where Hydra will put it. Each cell's
    configuration is composed once; its swept values (target, seed) are set on copies of it."""
    throughput = OmegaConf.load(THROUGHPUT)
    task_extra = [o for o in extra if not is_hydra_override(o)]
    jobs = []
    for cell in cells(table, setting):
        combos = [[]]
        for key, values in {**cell.sweep, "trainer.seed": [str(s) for s in range(first_seed, seeds)]}.items():
            combos = [c + [f"{key}={v}"] for c in combos for v in values]
        composed = compose_config([f"+experiment={cell.experiment}", *cell.overrides, *task_extra])
        for combo in combos:
            overrides = cell.overrides + combo + task_extra
            cfg = copy.deepcopy(composed)
            for override in combo:
                key, value = override.split("=", 1)
                OmegaConf.update(cfg, key, yaml.safe_load(value))
            for override in task_extra:  # the extra overrides win over the swept values, as on Hydra's command line
                key, value = override.lstrip("+").split("=", 1)
                if key in cell.sweep or key == "trainer.seed":
                    OmegaConf.update(cfg, key, yaml.safe_load(value))
            refused = None
            try:
                validate(cfg)
            except ConfigError as error:
                refused = str(error)
            factor = throughput.step_cost.get(cfg.optimizer.name, 1.0)
            hours = 0.0 if setting == "small" else cfg.trainer.epochs * throughput.gpu_hours_per_epoch * factor
            run_dir = sweep_dir / cfg.name / override_dirname(overrides)
            jobs.append(Job(cell.experiment, overrides, run_dir, cfg.trainer.epochs, hours, refused, cfg))
    return jobs


def check_launch(jobs: list[Job], setting: str, launcher: str, dry_run: bool, table: str) -> str | None:
    """Why the table cannot run as asked (one sentence), or None: ImageNet tables need ``data.root``
    with the data set's files, and a GPU unless they go to SLURM."""
    if setting != "imagenet" or not jobs:
        return None
    data = jobs[0].cfg.data
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
    if job.refused:
        return "refused"
    if (job.run_dir / "summary.json").exists() and not (job.run_dir / "failed.txt").exists():
        return "done"
    return "resume" if (job.run_dir / "checkpoint.pt").exists() else "new"


def multirun_commands(jobs: list[Job], launcher: str, sweep_dir: Path, extra: list[str]) -> list[list[str]]:
    """One multirun per experiment and fixed overrides, over the values its launched jobs take."""
    groups: dict[tuple[str, tuple[str, ...]], dict[str, list[str]]] = {}
    for job in jobs:
        if job.refused:
            continue
        fixed = tuple(o for o in job.overrides if o.split("=", 1)[0] not in ("sparsity.target", "trainer.seed") and o not in extra)
        swept = groups.setdefault((job.experiment, fixed), {})
        for o in job.overrides:
            key, value = o.split("=", 1)
            if key in ("sparsity.target", "trainer.seed") and value not in swept.setdefault(key, []):
                swept[key].append(value)
    commands = []
    for (experiment, fixed), swept in groups.items():
        sweeps = [f"{k}={','.join(v)}" for k, v in swept.items()]
        launch = [] if launcher == "basic" else [f"hydra/launcher={launcher}"]
        commands.append([sys.executable, "train.py", "--multirun", f"+experiment={experiment}", *fixed, *sweeps, *launch,
                         f"hydra.sweep.dir={sweep_dir}", *extra])
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=["table3", "table4", "oneshot"])
    parser.add_argument("--setting", choices=["imagenet", "small"], default="imagenet")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--launcher", choices=["slurm", "local", "basic"], default="basic",
                        help="slurm: one SLURM job per run; local: submitit on this machine; basic: one after another here")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs, their directories and GPU-hours; launch nothing")
    parser.add_argument("--sweep-dir", type=Path, help="where the runs go (default: multirun/paper_<setting>)")
    parser.add_argument("--oneshot-output", type=Path, help="the one-shot table (default: oneshot.md in the sweep directory)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # Hydra overrides for every job
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.extra = extra
    if args.seeds < 1:
        parser.error(f"--seeds={args.seeds} is not valid: it must be >= 1")
    sweep_dir = args.sweep_dir.resolve() if args.sweep_dir else REPO / "multirun" / f"paper_{args.setting}"
    jobs = expand(args.table, args.setting, args.seeds, sweep_dir, args.extra)
    refusal = check_launch(jobs, args.setting, args.launcher, args.dry_run, args.table)
    if refusal and not args.dry_run:
        print(f"error: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    for job in jobs:
        state = status(job)
        line = f"{state:8s} {job.run_dir}  ({job.epochs} epochs"
        line += f", {job.gpu_hours:.1f} GPU-h)" if args.setting == "imagenet" else ")"
        print(line + (f"\n         {job.refused}" if job.refused else ""))
    launched = [j for j in jobs if not j.refused]
    todo = [j for j in launched if status(j) != "done"]
    throughput = OmegaConf.load(THROUGHPUT)
    summary = f"{len(jobs)} jobs: {len(launched) - len(todo)} done, {len(todo)} to run, {len(jobs) - len(launched)} refused"
    if args.setting == "imagenet":
        summary += (f"; {sum(j.gpu_hours for j in launched):,.0f} GPU-hours for the table, {sum(j.gpu_hours for j in todo):,.0f} "
                    f"still to run ({throughput.source})")
    print(summary)
    commands = multirun_commands(jobs, args.launcher, sweep_dir, args.extra)
    for command in commands:
        print("+", shlex.join([command[0], str(REPO / command[1]), *command[2:]]), flush=True)  # runnable from any directory
        if not args.dry_run:
            returncode = subprocess.run(command, cwd=REPO).returncode
            if returncode not in (0, 1):  # 1: some jobs failed, listed by the sweep itself
                raise SystemExit(f"the sweep stopped with exit code {returncode}")
    if refusal:  # a dry run: say what a launch would refuse
        print(f"note: a launch would stop here: {refusal}")
    if args.table == "oneshot" and not args.dry_run:
        runs = [str(j.run_dir) for j in launched]  # every seed: the table gives mean ± std
        output = args.oneshot_output.resolve() if args.oneshot_output else sweep_dir / "oneshot.md"
        command = [sys.executable, "scripts/oneshot_prune.py", *runs, "--output", str(output)]
        print("+", shlex.join([command[0], str(REPO / command[1]), *command[2:]]), flush=True)
        raise SystemExit(subprocess.run(command, cwd=REPO).returncode)


if __name__ == "__main__":
    main()
