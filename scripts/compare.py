"""Our runs in the paper's tables, beside the paper's numbers, and HAM's gain against the seed noise.

    python scripts/compare.py multirun/                       # every run under a sweep directory
    python scripts/compare.py multirun/paper_imagenet --table 4
    python scripts/compare.py results/records/paper-small --setting small
    python scripts/compare.py --wandb my-entity/ham            # runs from a W&B project (wandb.Api)

Sources are run directories, sweep directories or records folders (``results/records/...``).
Runs are grouped by table cell (experiment, target sparsity, epochs, setting); runs that differ in
anything but the seed (another ``ham.alpha``, batch size, number of processes, ...) are separate
cells labelled with every key in which they differ from their setting's defaults, never averaged. Each cell is our mean ± sample std over
seeds with n, and STR's achieved sparsity; the paper's ImageNet value sits beside it (reference
data, results/reference/). The one-shot table (``--table oneshot``; in ``all`` when
some run has them) needs the results ``scripts/oneshot_prune.py`` adds to dense runs on disk, so it
is built from run directories or records, not from W&B. The gain view tests HAM − baseline with Welch's two-sided
t-test over the seeds, with Holm's correction over the table's tests. Failed and unfinished runs
(any run directory without ``summary.json``) are listed, not averaged; so are sources and runs that
cannot be read (a missing directory, a damaged ``summary.json`` or ``.hydra/config.yaml``), with the
reason, and the rest is compared (exit code 2 only when no run at all could be read). Prints the tables; with
``--output-dir DIR`` also writes each as Markdown and as CSV with numeric columns (mean, std, n, p,
p_holm) into DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analysis import runs as R  # noqa: E402
from analysis import tables as T  # noqa: E402
from scripts.result_files import FewerResults, check_result, strict_runs  # noqa: E402
from training.records import wandb_credentials_found  # noqa: E402


TABLES = {"3": ("Table 3 (dense)", T.table3, lambda runs, setting: T.cell_records(runs, setting, "3")),
          "4": ("Table 4 (sparse)", T.table4, lambda runs, setting: T.cell_records(runs, setting, "4")),
          "gains": ("HAM's gain", T.gains, T.gain_records),
          "oneshot": ("One-shot pruning without fine-tuning (dense)", T.oneshot, T.oneshot_records)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*", type=Path)
    parser.add_argument("--wandb", action="append", default=[], metavar="ENTITY/PROJECT")
    parser.add_argument("--table", choices=[*TABLES, "all"], default="all")
    parser.add_argument("--setting", choices=["imagenet", "small", "all"], default="all")
    parser.add_argument("--output-dir", type=Path, help="also write each table as Markdown (display) and CSV (numbers) here")
    parser.add_argument("--note", default="", help="a sentence written above each table (what some of the sources stand for)")
    parser.add_argument("--strict", action="store_true",
                        help="regenerating committed tables: stop on a record that cannot be read, and never replace a table in "
                             "--output-dir with one that has fewer seeds or more missing cells (unless --allow-fewer)")
    parser.add_argument("--allow-fewer", action="store_true", help="with --strict: write tables with fewer results anyway")
    args = parser.parse_args(argv)
    if not args.sources and not args.wandb:
        parser.error("give run/sweep/records directories, or --wandb entity/project")
    if args.wandb and not wandb_credentials_found():  # wandb.Api() would stop with a traceback
        print(f"error: --wandb {args.wandb[0]} needs W&B credentials and none were found (no WANDB_API_KEY, no `wandb login` entry "
              f"in ~/.netrc): run `wandb login` or set WANDB_API_KEY, or compare the runs' directories (offline runs: their "
              f"outputs/ or multirun/ folders)", file=sys.stderr)
        return 2
    try:
        runs = (strict_runs(args.sources, args.allow_fewer) if args.strict else R.from_disk(args.sources)) \
            + [r for path in args.wandb for r in R.from_wandb(path)]
    except FewerResults as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finished = [r for r in runs if r.status == "finished"]
    settings = sorted({r.setting for r in finished}) if args.setting == "all" else [args.setting]
    has_oneshot = any(r.summary and r.summary.get("oneshot") for r in finished)
    chosen = [k for k in TABLES if k != "oneshot" or has_oneshot] if args.table == "all" else [args.table]
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    if all(r.status == "unreadable" for r in runs):  # nothing usable: no run could be read (failed and unfinished ones are listed)
        bad = [f"  {r.source}: {r.error.splitlines()[0]}" for r in runs]
        print("error: no run could be read in " + ", ".join(map(str, [*args.sources, *args.wandb])) +
              (":\n" + "\n".join(bad) if bad else " (no runs found there)"), file=sys.stderr)
        return 2
    statuses = ("finished", "failed", "unfinished", "unreadable")
    written: list[tuple[Path, str]] = []
    out = [f"{len(runs)} runs: " + ", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in statuses if s != "unreadable" or
                                              any(r.status == s for r in runs))]
    for setting in settings:
        for key in chosen:
            title, build, records = TABLES[key]
            rows = build(runs, setting)
            rows.above = " ".join(filter(None, (args.note, rows.above)))
            name = f"table{key}_{setting}" if key in ("3", "4") else f"{key}_{setting}"
            if args.output_dir:
                written.append((args.output_dir / f"{name}.md", f"# {title}, {setting} setting\n\n" + T.markdown(rows)))
                written.append((args.output_dir / f"{name}.csv", T.csv_text(records(runs, setting))))
            out += ["", f"## {title}, {setting} setting", "", T.markdown(rows).rstrip()]
    try:  # every table checked before any is written (--strict)
        for path, text in written:
            if args.strict and path.suffix == ".md":
                check_result(path, text, args.allow_fewer)
    except FewerResults as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path, text in written:
        path.write_text(text)
    listed = T.not_averaged(runs)
    if listed:
        out += ["", "Not averaged:", *listed]
    if args.output_dir:
        out += ["", f"wrote {', '.join(sorted(p.name for p in args.output_dir.glob('*_*.*')))} into {args.output_dir}"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
