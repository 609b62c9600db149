"""Every small-scale table, figure and the theory experiment, from scratch, in one command.

    python scripts/small_suite.py                 # train everything (about 75 minutes on 2 cores), then tables and figures
    python scripts/small_suite.py --dry-run       # list the commands and their estimated cost
    python scripts/small_suite.py --tables-only   # rebuild tables and figures from the committed records

The suite is the small setting (LeNet-300-100 on Fashion-MNIST) of:

* Table 3: dense, ± HAM, SGD and SAM, 10 and 20 epochs (``scripts/paper_tables.py table3 --setting small``);
* Table 4: random PaI, AC/DC, RiGL (each plain / + Sign-In / + HAM), spred, PILoT, STR ± HAM at 80 / 90 / 95 %;
* the one-shot table: the 10-epoch dense and dense + HAM runs of Table 3 pruned without fine-tuning;
* HAM's (α, β) grid (``scripts/small_experiments.py ham-grid``);
* the theory experiment (``scripts/theory_experiment.py``),

each over ``--seeds`` seeds (5: what 90 minutes on 2 cores afford, measured from the 3-seed run's
timings, about 14 minutes per seed; the grid always 3; ``--seeds-from K`` trains only seeds K and up,
keeping the earlier seeds' records). The training commands are Hydra multiruns run by
``--workers`` processes side by side (2, one torch thread each), the most expensive first; a rerun
leaves out the multiruns whose runs are all finished (with the configuration they have now),
resumes unfinished runs and keeps the timings file of the call that trained. Then the records (summaries with histories and
one-shot results, no checkpoints) go into ``<results>/records/paper-small`` and
``<results>/records/ham-grid`` (each run's record replacing its earlier one, so that ``--parts``
leaves the other parts' records alone), and every table and figure is rebuilt from them:
``<results>/compare/{table3,table4,gains,oneshot}_small.{md,csv}``, ``<results>/ham_grid.md``,
``<results>/figures/*.png``, ``<results>/theory.md``. ``<results>/small_suite.md`` records the
timings. Hydra overrides after ``--`` apply to every training job; they change what the runs
mean, so they need their own ``--sweep-dir`` and ``--results-dir`` (a quick check:
``--parts table3 oneshot --seeds 2 --sweep-dir /tmp/s --results-dir /tmp/r -- data.train_subset=512``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analysis import runs as R  # noqa: E402
from scripts import paper_tables, small_experiments  # noqa: E402  (scripts/ is a namespace package)
from scripts.command_pool import Step, run_steps, sweep_failed  # noqa: E402
from scripts.markdown_sections import replace_section  # noqa: E402
from training.config import ConfigError  # noqa: E402
from training.rundir import FAILED_NAME  # noqa: E402

PARTS = ["table3", "table4", "oneshot", "ham-grid", "theory"]
QUIET = ["logger=disabled", "trainer.progress=false", "trainer.threads=1"]
ONESHOT_SPARSITIES = ["0.5", "0.7", "0.8", "0.9", "0.95"]
#: records of the + HAM cells at the small setting's earlier α = 20 (before the rule of docs/methods.md §6
#: chose 50): only in the gains table, as a sensitivity row beside each gain at the setting's α
#: (analysis/stale_records.py declares them kept), with the note that says so above it
SENSITIVITY = "paper-small-ham-alpha20"
SENSITIVITY_NOTE = (f"Rows whose variant names `ham.alpha=20`: the + HAM runs at the small setting's earlier α = 20 "
                    f"(results/records/{SENSITIVITY}), kept beside those at today's α = 50 as a sensitivity check and not "
                    "trained again; the rows without it are the suite's runs at α = 50.")


def _cost(experiments: list[str], epochs: int, runs: int) -> float:
    sam = any("sam" in e for e in experiments)
    return runs * epochs / 10 * (2 if sam else 1)


def training_steps(parts: list[str], seeds: int, sweep_dir: Path, extra: list[str], first_seed: int = 0,
                   experiments: list[str] | None = None) -> tuple[list[Step], list[Path]]:
    """The training commands of the chosen parts (only ``experiments`` of the tables, when given),
    and the run directories they must produce."""
    steps, expected = [], []
    tables = [t for t in ("table3", "table4") if t in parts]
    if "oneshot" in parts and "table3" not in parts:
        tables.append("oneshot")  # its runs are the first cells of Table 3
    for table in tables:
        jobs = [j for j in paper_tables.expand(table, "small", seeds, sweep_dir / "paper", extra, first_seed)
                if experiments is None or j.experiment in experiments]
        expected += [j.run_dir for j in jobs if not j.refused]
        for command in paper_tables.multirun_commands(jobs, "basic", sweep_dir / "paper", extra):
            experiment = next(a.split("=", 1)[1] for a in command if a.startswith("+experiment="))
            group = [j for j in jobs if j.experiment == experiment and not j.refused]
            steps.append(Step(f"{table} {experiment}", command, _cost([experiment], group[0].epochs, len(group))))
    if "ham-grid" in parts:
        sweep = small_experiments.SWEEPS["ham-grid"]
        own = [o for o in extra if o not in small_experiments.COMMON]  # the sweep adds those itself
        for overrides, command in zip(sweep["overrides"], small_experiments.sweep_commands(sweep, own, sweep_dir / "ham_grid")):
            steps.append(Step("ham-grid " + " ".join(overrides), command, _cost([], 10, small_experiments.job_count(overrides))))
    return steps, expected


def build_outputs(sweep_dir: Path | None, results: Path, allow_fewer: bool = False) -> list[list[str]]:
    """Archive the records (when ``sweep_dir`` is given) and rebuild every table and figure; the
    comparison tables from records read strictly, never replacing a committed table with fewer
    results unless ``allow_fewer`` (``compare.py --strict``); a command that refuses stops the suite."""
    records = {"paper": results / "records" / "paper-small", "ham_grid": results / "records" / "ham-grid"}
    if sweep_dir is not None:
        for sub, folder in records.items():
            if (sweep_dir / sub).exists():  # a run's record replaces its earlier one; other records stay
                print(f"[suite] {R.archive(sweep_dir / sub, folder)} records -> {folder}", flush=True)
    python = sys.executable
    commands = []
    paper = R.from_disk([records["paper"]]) if records["paper"].exists() else []
    strict = ["--strict", *(["--allow-fewer"] if allow_fewer else [])]
    if paper:
        commands.append([python, "scripts/compare.py", str(records["paper"]), "--setting", "small", "--output-dir", str(results / "compare"),
                         *strict])
        sensitivity = results / "records" / SENSITIVITY
        if sensitivity.exists():  # the gains table again, with the + HAM runs at the earlier α as rows of their own
            commands.append([python, "scripts/compare.py", str(records["paper"]), str(sensitivity), "--setting", "small", "--table", "gains",
                             "--output-dir", str(results / "compare"), "--note", SENSITIVITY_NOTE, *strict])
    if any(r.status == "finished" and r.target is not None for r in paper):  # Table 4's runs
        commands.append([python, "scripts/figures.py", "accuracy-sparsity", str(records["paper"]),
                         "--output", str(results / "figures" / "accuracy-sparsity.png")])
        commands.append([python, "scripts/figures.py", "sign-flips", str(records["paper"]), "--output", str(results / "figures" / "sign-flips.png")])
    if records["ham_grid"].exists():
        commands.append([python, "scripts/small_experiments.py", "ham-grid", "--tables-only", "--records", str(records["ham_grid"]),
                         "--output", str(results / "ham_grid.md")])
        commands.append([python, "scripts/figures.py", "ham-grid", str(records["ham_grid"]), "--output", str(results / "figures" / "ham-grid.png")])
    for command in commands:
        print("+", " ".join(command[1:]), flush=True)
        if subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL).returncode != 0:  # it said why on stderr
            raise SystemExit(f"error: `{' '.join(command[1:3])} ...` stopped (above); no further table or figure was rebuilt")
    if results == REPO / "results":
        update_readme(results / "compare")
    return commands


README_TABLES = [
    ("table3_small.md", "Table 3 at small scale: dense, ± HAM, SGD and SAM, 10 and 20 epochs", ""),
    ("table4_small.md", "Table 4 at small scale: every sparse method at 80, 90 and 95 % (STR: achieved sparsity after @)",
     "PILoT and spred trail random PaI here, where the paper has PILoT above it and spred on a par: the method at this "
     "scale, not a defect (their penalty costs accuracy before the prune that 10 epochs do not earn back, and a random "
     "mask costs this over-parameterized network little; controls: `results/mirror_controls.md`, docs/methods.md §10.4). "
     "Sign-In's rows: m ⊙ w without weight decay on m and w, the default; what its gain is made of: docs/methods.md §10.3."),
    ("gains_small.md", "HAM's gain over its baseline: Welch's two-sided t-test over the seeds, Holm's correction over the table", ""),
    ("oneshot_small.md", "One-shot pruning of the 10-epoch dense runs, without fine-tuning", ""),
]


def _wrapped(text: str) -> str:
    """Prose of a generated section, in lines of at most 110 characters (tests/test_readme.py)."""
    return textwrap.fill(text, 110, break_long_words=False, break_on_hyphens=False)


def update_readme(compare_dir: Path, readme: Path = REPO / "results" / "README.md") -> None:
    """Put the suite's tables (without their titles) and their notes between the small-suite markers of
    ``results/README.md`` (the README opens with the claims' verdicts and links there)."""
    parts = []
    for name, title, note in README_TABLES:
        if (compare_dir / name).exists():
            body = (compare_dir / name).read_text().split("\n", 2)[2]  # without the "# ..." line and the blank after it
            parts += [_wrapped(f"**{title}** (`results/compare/{name}`)"), "", body, *([_wrapped(note), ""] if note else [])]
    replace_section(readme, "small-suite", "\n".join(parts))


def write_timings(path: Path, argv: list[str], steps: list[Step], wall: float, workers: int, sweep_dir: Path,
                  append: bool = False) -> None:
    """The timings of this call into ``path``; with ``append`` (a partial rerun, ``--experiments``) as a
    section after those of the earlier reruns, which stay."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    lines = [
        "# The small-scale suite: how long it took",
        "",
        "Command: `" + " ".join(["python scripts/small_suite.py", *argv]) + "`",
        "",
        f"Machine: {os.cpu_count()} CPU cores ({cpu}), {workers} workers with one torch thread each.",
        f"Wall time: {wall / 60:.1f} min in all (training, pruning, records, tables, figures, theory).",
        "",
        "| step | estimated cost (10-epoch runs) | wall time s | exit code |",
        "|---|---:|---:|---:|",
    ]
    for step in sorted(steps, key=lambda s: -s.cost):
        seconds = "–" if step.seconds is None else f"{step.seconds:.0f}"
        lines.append(f"| {step.name} | {step.cost:g} | {seconds} | {step.returncode} |")
    text = "\n".join(lines + failed_runs(sweep_dir)) + "\n"
    if append and path.exists():  # the title once; each rerun a section of its own
        text = path.read_text() + "\n" + text.replace(lines[0], "## A later rerun", 1)
    path.write_text(text)


def failed_runs(sweep_dir: Path) -> list[str]:
    """The runs under ``sweep_dir`` that failed, with their message (exit code 1: some of the
    command's own runs failed)."""
    failed = sorted(sweep_dir.rglob(FAILED_NAME))
    if not failed:
        return ["", "No run failed."]
    lines = ["", f"Exit code 1: some of the command's runs failed. The {len(failed)} failed runs (listed in the tables, never averaged):", ""]
    return lines + [f"* `{p.parent.relative_to(sweep_dir)}`: {p.read_text().strip().splitlines()[0].split(';')[0]}" for p in failed]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 of every table run (the HAM grid: 3)")
    parser.add_argument("--seeds-from", type=int, default=0, metavar="K",
                        help="train only seeds K .. N-1 (the records of the earlier seeds are kept and the tables use all)")
    parser.add_argument("--experiments", nargs="+", metavar="NAME",
                        help="train only these experiments of the tables (e.g. the + HAM cells after HAM's α changed); the records "
                             "of the others stay as they are")
    parser.add_argument("--workers", type=int, default=2, help="training processes side by side (one torch thread each)")
    parser.add_argument("--sweep-dir", type=Path, default=REPO / "multirun" / "small_suite")
    parser.add_argument("--results-dir", type=Path, default=REPO / "results", help="where records, tables and figures go")
    parser.add_argument("--dry-run", action="store_true", help="list the commands and their cost; run nothing")
    parser.add_argument("--tables-only", action="store_true", help="rebuild tables and figures from the records; train nothing")
    parser.add_argument("--allow-fewer", action="store_true",
                        help="rebuild a table even with fewer results than the committed one (records missing: fewer seeds, missing cells)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.seeds < 1 or args.workers < 1:
        parser.error("--seeds and --workers must be >= 1")
    if not 0 <= args.seeds_from < args.seeds:
        parser.error(f"--seeds-from {args.seeds_from} is not valid: it must be in [0, --seeds={args.seeds})")
    tables = [t for t in ("table3", "table4", "oneshot") if t in args.parts]
    known = {c.experiment for t in tables for c in paper_tables.cells(t, "small")}
    if args.experiments and not set(args.experiments) <= known:
        parser.error(f"--experiments {' '.join(sorted(set(args.experiments) - known))}: not an experiment of the parts "
                     f"{' '.join(args.parts)}; they have {', '.join(sorted(known)) or 'none'}")
    sweep_dir, results = args.sweep_dir.resolve(), args.results_dir.resolve()
    defaults = {parser.get_default("sweep_dir").resolve(), parser.get_default("results_dir").resolve()}
    if extra and {sweep_dir, results} & defaults:
        parser.error(f"overrides after -- ({' '.join(extra)}) change the runs: give --sweep-dir and --results-dir other than "
                     "the defaults, so that these runs do not mix with the suite's records in results/records")
    if args.tables_only:
        build_outputs(None, results, args.allow_fewer)
        return 0
    start = time.monotonic()
    try:
        steps, expected = training_steps(args.parts, args.seeds, sweep_dir, QUIET + extra, args.seeds_from, args.experiments)
    except ConfigError as error:  # an override after -- that Hydra cannot compose
        print(f"error: {error} (in the overrides after --: {' '.join(extra)})", file=sys.stderr)
        return 2
    theory = [sys.executable, "scripts/theory_experiment.py", "--output", str(results / "theory.md"),
              "--figure", str(results / "figures" / "theory.png")]
    if "theory" in args.parts:
        steps.append(Step("theory experiment", theory, 3.0))  # about a minute: as much as 3 short runs
    for step in sorted(steps, key=lambda s: -s.cost):
        print(f"{step.cost:6g}  {step.name}\n        {' '.join(step.command[1:])}")
    print(f"{len(steps)} commands, {len(expected)} table runs, estimated {sum(s.cost for s in steps):g} ten-epoch runs of work")
    if args.dry_run:
        return 0
    if not steps:  # a rerun: every multirun's jobs are finished, with the configuration they have now
        print(f"[suite] all {len(expected)} table runs are finished: nothing to train", flush=True)
    run_steps(steps, args.workers, sweep_dir / "logs", expected)
    failed = [s for s in steps if sweep_failed(s.returncode)]
    if "oneshot" in args.parts:
        dense = [str(j.run_dir) for j in paper_tables.expand("oneshot", "small", args.seeds, sweep_dir / "paper", QUIET + extra, args.seeds_from)
                 if args.experiments is None or j.experiment in args.experiments]
        command = [sys.executable, "scripts/oneshot_prune.py", *dense, "--sparsities", *ONESHOT_SPARSITIES,
                   "--output", str(sweep_dir / "oneshot.md")]
        print("+", " ".join(command[1:]), flush=True)
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    build_outputs(sweep_dir, results, args.allow_fewer)
    timings = ("small_suite_experiments.md" if args.experiments else  # a partial rerun keeps the full suite's timings and adds its own
               "small_suite.md" if args.seeds_from == 0 else f"small_suite_seeds{args.seeds_from}-{args.seeds - 1}.md")
    if steps:  # else the timings of the call that trained the runs stay
        write_timings(results / timings, argv, steps, time.monotonic() - start, args.workers, sweep_dir, append=bool(args.experiments))
    for step in failed:
        print(f"[suite] FAILED: {step.name} (exit {step.returncode}); see its log in {sweep_dir / 'logs'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
