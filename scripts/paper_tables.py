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
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.compose import compose_config  # noqa: E402
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


#: the keys Hydra leaves out of a job's directory name (configs/train.yaml)
EXCLUDED = set(OmegaConf.load(REPO / "configs" / "train.yaml").hydra.job.config.override_dirname.exclude_keys)


def override_dirname(overrides: list[str]) -> str:
    """Hydra's ``job.override_dirname``: the overrides sorted, without the excluded keys."""
    return ",".join(sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+") not in EXCLUDED))


def is_hydra_override(override: str) -> bool:
    """``hydra.*`` and ``hydra/...`` overrides configure the launch, not the job (nor its directory)."""
    return override.lstrip("+~").startswith(("hydra.", "hydra/"))


def expand(table: str, setting: str, seeds: int, sweep_dir: Path, extra: list[str]) -> list[Job]:
    """Every job of the table, checked (``validate``) and placed where Hydra will put it."""
    throughput = OmegaConf.load(THROUGHPUT)
    task_extra = [o for o in extra if not is_hydra_override(o)]
    jobs = []
    for cell in cells(table, setting):
        combos = [[]]
        for key, values in {**cell.sweep, "trainer.seed": [str(s) for s in range(seeds)]}.items():
            combos = [c + [f"{key}={v}"] for c in combos for v in values]
        for combo in combos:
            overrides = cell.overrides + combo + task_extra
            cfg = compose_config([f"+experiment={cell.experiment}", *overrides])
            refused = None
            try:
                validate(cfg)
            except ConfigError as error:
                refused = str(error)
            factor = throughput.step_cost.get(cfg.optimizer.name, 1.0)
            hours = 0.0 if setting == "small" else cfg.trainer.epochs * throughput.gpu_hours_per_epoch * factor
            run_dir = sweep_dir / cfg.name / override_dirname(overrides)
            jobs.append(Job(cell.experiment, overrides, run_dir, cfg.trainer.epochs, hours, refused))
    return jobs


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
        print("+", " ".join(command[1:]), flush=True)
        if not args.dry_run:
            returncode = subprocess.run(command, cwd=REPO).returncode
            if returncode not in (0, 1):  # 1: some jobs failed, listed by the sweep itself
                raise SystemExit(f"the sweep stopped with exit code {returncode}")
    if args.table == "oneshot" and not args.dry_run:
        runs = [str(j.run_dir) for j in launched]  # every seed: the table gives mean ± std
        output = args.oneshot_output.resolve() if args.oneshot_output else sweep_dir / "oneshot.md"
        command = [sys.executable, "scripts/oneshot_prune.py", *runs, "--output", str(output)]
        print("+", " ".join(command[1:]), flush=True)
        raise SystemExit(subprocess.run(command, cwd=REPO).returncode)


if __name__ == "__main__":
    main()
