"""Run the small-setting (Fashion-MNIST, 2 CPU cores) sweeps and write their tables from the
runs' ``summary.json`` records.

    python scripts/small_experiments.py ham-grid     # results/ham_grid.md: HAM's (alpha, beta) for the small setting
    python scripts/small_experiments.py mirror-presets    # results/mirror_presets.md: PILoT's alpha-growth G (and both penalties)
    python scripts/small_experiments.py ham-weight-decay  # results/ham_weight_decay.md: base weight decay with HAM's beta
    python scripts/small_experiments.py signin-weight-decay  # results/signin_weight_decay.md: base weight decay on Sign-In's m, w
    python scripts/small_experiments.py ham-grid --tables-only   # rebuild the table from the records

The presets per target of STR, PILoT and spred are measured by ``python scripts/paper_tables.py
calibrate <method> --setting small`` (results/calibration/); mirror-presets is the sweep that chose
PILoT's alpha-growth G (configs/sparsity/pilot.yaml), which calibrate keeps fixed.

Each sweep is one or more Hydra multiruns of train.py from the sweep configs in ``configs/sweep/``
(``python train.py -m +sweep=ham_grid`` runs one alone; runs already finished are resumed, i.e.
skipped); this script runs them a few at a time and writes the table. The
runs' records (``summary.json``, or the config of a failed run) are copied to
``results/records/<sweep>/`` and the table is built from there, so it can be checked and rebuilt.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from omegaconf import DictConfig, OmegaConf  # noqa: E402

from analysis import runs as R  # noqa: E402
from analysis.stats import mean, mean_std, pct, sample_std  # noqa: E402
from scripts.command_pool import Step, check_sweep_exit, run_steps  # noqa: E402
from training.hydra_callbacks import job_count as hydra_job_count  # noqa: E402

#: added to every sweep's command (small_claims' sweeps, which have no sweep config, take setting=small from here)
COMMON = ["setting=small", "logger=disabled", "trainer.progress=false"]
SWEEP_CONFIGS = REPO / "configs" / "sweep"


@functools.cache
def sweep_config(name: str) -> DictConfig:
    """``configs/sweep/<name>.yaml``, read once."""
    return OmegaConf.load(SWEEP_CONFIGS / f"{name}.yaml")


def sweep_params(overrides: list[str]) -> dict[str, str]:
    """What a multirun sweeps: its ``+sweep=<name>`` config's ``hydra.sweeper.params``, with the
    other overrides on top (as Hydra's basic sweeper merges them)."""
    params: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "+sweep":
            params.update({k: str(v) for k, v in sweep_config(value).hydra.sweeper.params.items()})
        else:
            params[key] = value
    return params


def multiruns(configs: list[str], split: str | None = None) -> list[list[str]]:
    """One multirun per sweep config (``configs/sweep/<name>.yaml``); a config that sweeps ``split``
    becomes one multirun per value of it, so that workers can share it."""
    runs = []
    for name in configs:
        values = sweep_params([f"+sweep={name}"]).get(split or "")
        runs += [[f"+sweep={name}"]] if values is None else [[f"+sweep={name}", f"{split}={v}"] for v in values.split(",")]
    return runs


def job_count(overrides: list[str]) -> int:
    """The number of jobs of a multirun, counted as the local launcher's thread share counts them."""
    return hydra_job_count([f"{key}={value}" for key, value in sweep_params(overrides).items()])


#: the sweeps, each from its configs in configs/sweep/ (the multirun's directory is the first's hydra.sweep.dir)
SWEEPS = {
    "ham-grid": {"configs": ["ham_grid_baseline", "ham_grid"], "split": "ham.alpha", "output": "results/ham_grid.md"},
    "mirror-presets": {"configs": ["mirror_presets_pilot", "mirror_presets_spred"], "output": "results/mirror_presets.md"},
    "ham-weight-decay": {"configs": ["ham_weight_decay"], "output": "results/ham_weight_decay.md"},
    "signin-weight-decay": {"configs": ["signin_weight_decay"], "output": "results/signin_weight_decay.md"},
}
for _sweep in SWEEPS.values():
    _sweep["overrides"] = multiruns(_sweep["configs"], _sweep.get("split"))
    _sweep["dir"] = str(sweep_config(_sweep["configs"][0]).hydra.sweep.dir)


def sweep_commands(sweep: dict, extra: list[str], sweep_dir: Path | str | None = None) -> list[list[str]]:
    """The ``train.py --multirun`` commands of a sweep (into ``sweep_dir``, default the sweep's own)."""
    where = sweep_dir or sweep["dir"]
    return [[sys.executable, "train.py", "--multirun", *overrides, *COMMON, *extra, f"hydra.sweep.dir={where}"]
            for overrides in sweep["overrides"]]


#: a 10-epoch run's cost in 10-epoch LeNet-300-100 runs (measured: two side by side, one thread each)
MODEL_COST = {"lenet300_100": 1.0, "cnn_small": 9.0}


def step_cost(overrides: list[str]) -> float:
    """A multirun's cost in 10-epoch LeNet-300-100 runs: its number of jobs, its model and length."""
    params = sweep_params(overrides)
    model = params.get("model", "lenet300_100")
    epochs = int(params.get("trainer.epochs", "10").split(",")[0])
    return job_count(overrides) * MODEL_COST.get(model, 1.0) * epochs / 10


def sweep_steps(name: str, sweep: dict, extra: list[str], sweep_dir: Path | str | None = None) -> list[Step]:
    """The sweep's multiruns as :class:`Step` s of the worker pool."""
    return [Step(f"{name} " + " ".join(o), c, step_cost(o)) for o, c in zip(sweep["overrides"], sweep_commands(sweep, extra, sweep_dir))]


def run_sweep(name: str, sweep: dict, workers: int) -> None:
    """Run the sweep's multiruns ``workers`` at a time, each job with cores / workers torch threads;
    exit code 1 of a multirun (some jobs failed: listed by the sweep, archived as failed records) is
    not an error."""
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    steps = sweep_steps(name, sweep, [f"trainer.threads={threads}"])
    run_steps(steps, workers, REPO / sweep["dir"] / "logs", [])
    for step in steps:
        check_sweep_exit(step.returncode, step.command)


def load_runs(records_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(records_dir.glob("*.json"))]


def header(title: str, description: list[str], command: str) -> list[str]:
    """A table's title, what was run, and the command that regenerates it."""
    return [f"# {title}", "", *description, f"Regenerate with `{command}` (2 CPU cores).", ""]


def ham_grid_table(runs: list[dict], command: str) -> str:
    lines = header(
        "HAM's (alpha, beta) for the small setting",
        ["LeNet-300-100 on Fashion-MNIST, dense, SGD (lr 0.05, momentum 0.9, wd 5e-4, cosine, 10 epochs),",
         "test top-1 % after the last epoch, mean ± sample std over the seeds; a cell whose runs the divergence guard",
         "stopped shows `diverged` (with the count when only some did)."],
        command,
    )
    baseline = [r for r in runs if not r["config"]["ham"]["enabled"] and not r.get("failed")]
    runs = [r for r in runs if r["config"]["ham"]["enabled"]]
    alphas = sorted({r["config"]["ham"]["alpha"] for r in runs})
    betas = sorted({r["config"]["ham"]["beta"] for r in runs})
    lines.append("| alpha \\ beta | " + " | ".join(f"{b:g}" for b in betas) + " |")
    lines.append("|---|" + "---:|" * len(betas))
    for a in alphas:
        cells = []
        for b in betas:
            match = [r for r in runs if r["config"]["ham"]["alpha"] == a and r["config"]["ham"]["beta"] == b]
            done = [r["test_acc"] for r in match if not r.get("failed")]
            failed = len(match) - len(done)
            cell = "not run" if not match else "diverged" if not done else mean_std(done)
            cells.append(cell + (f" ({failed} diverged)" if failed and done else ""))
        lines.append(f"| {a:g} | " + " | ".join(cells) + " |")
    if baseline:
        lines += ["", f"Without HAM (same recipe, {len(baseline)} seeds): {mean_std([r['test_acc'] for r in baseline])} %."]
    lines += [
        "",
        "alpha from 5 to 100 trains well and alpha=200 (the ImageNet value) diverges. The setting's beta=1e-3 comes from",
        "this grid; its alpha is chosen by the rule of docs/methods.md §6 (dense and 90 % random PaI, written before its",
        "grid ran): `results/alpha_rule.md`. Compare cells with their seed spread before reading anything into",
        "differences of a few tenths.",
    ]
    return "\n".join(lines) + "\n"


def mirror_presets_table(runs: list[dict], command: str) -> str:
    lines = header(
        "PILoT and spred penalties for the small setting",
        ["LeNet-300-100 on Fashion-MNIST, 10 epochs, one seed; the penalty is the only decay on m and w.",
         "Both prune to the target by global magnitude after the last epoch, without fine-tuning. `before` is",
         "the test accuracy just before that prune, `after` just after it (the reported result); `mass` is the",
         "fraction of ‖θ‖₁ the prune removed (near 0: the penalty had already made those weights ~0).",
         "The choice (marked **bold**): for PILoT first the α-growth G with the best mean over the targets of each",
         "target's best `after`, then per target the α₀ with the best `after` at that G; for spred the penalty",
         "with the best `after` per target. One seed: differences of a few tenths are within seed noise."],
        command,
    )
    for method, knobs in (("pilot", ("pilot_alpha", "pilot_alpha_growth")), ("spred", ("spred_weight_decay",))):
        rows = [r for r in runs if r["config"]["sparsity"]["method"] == method]
        if not rows:
            continue
        best = _best_per_target([r for r in rows if not r.get("failed")], knobs[1:])
        lines += ["", f"## {method}", "",
                  "| " + " | ".join(f"sparsity.{k}" for k in knobs) + " | target % | before % | after % | mass % |",
                  "|" + "---:|" * (len(knobs) + 4)]
        for r in sorted(rows, key=lambda r: (r["config"]["sparsity"]["target"], *(r["config"]["sparsity"][k] for k in knobs))):
            sc = r["config"]["sparsity"]
            if r.get("failed"):  # the divergence guard stopped it (the penalty collapsed the network)
                lines.append("| " + " | ".join([f"{sc[k]:g}" for k in knobs] + [f"{100 * sc['target']:g}", "diverged", "–", "–"]) + " |")
                continue
            cells = [f"{sc[k]:g}" for k in knobs] + [f"{100 * sc['target']:g}", pct(r.get("test_acc_before_prune")),
                                                       pct(r["test_acc"]), pct(r.get("pruned_mass_fraction"))]
            if r is best.get(sc["target"]):
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _best_per_target(rows: list[dict], shared: tuple[str, ...]) -> dict[float, dict]:
    """Per target, the run with the best final accuracy among those whose ``shared`` knobs take the
    values that are best on average over the targets (each target counted by its best run)."""
    def best(candidates: list[dict]) -> dict[float, dict]:
        out: dict[float, dict] = {}
        for r in candidates:
            t = r["config"]["sparsity"]["target"]
            if t not in out or r["test_acc"] > out[t]["test_acc"]:
                out[t] = r
        return out

    if not shared or not rows:
        return best(rows)
    options = {tuple(r["config"]["sparsity"][k] for k in shared) for r in rows}
    by_option = {o: best([r for r in rows if tuple(r["config"]["sparsity"][k] for k in shared) == o]) for o in options}
    chosen = max(sorted(options), key=lambda o: mean([r["test_acc"] for r in by_option[o].values()]))
    return by_option[chosen]


def noise_verdict(difference: float, samples) -> tuple[str, float]:
    """Whether a difference of means lies ``within`` or ``beyond`` twice the larger seed std of the
    samples, and that std."""
    spread = max(sample_std(a) for a in samples)
    return ("within" if abs(difference) <= 2 * spread else "beyond"), spread


def ham_weight_decay_table(runs: list[dict], command: str) -> str:
    lines = header(
        "The base weight decay with HAM's beta, small setting",
        ["`ham.keep_weight_decay=true`: the base weight decay (5e-4) stays on the weights HAM acts on, beside β;",
         "`false`: β alone. Dense LeNet-300-100 on Fashion-MNIST with HAM (alpha=" + ", ".join(sorted({f"{r['config']['ham']['alpha']:g}" for r in runs}))
         + ", beta=1e-3), 10 epochs;",
         "mean ± sample std over the seeds."],
        command,
    )
    lines += ["| ham.keep_weight_decay | seeds | test top-1 % | train loss |", "|---|---:|---:|---:|"]
    accs = {}
    for keep in (True, False):
        rs = [r for r in runs if r["config"]["ham"]["keep_weight_decay"] == keep and not r.get("failed")]
        if rs:
            accs[keep] = [r["test_acc"] for r in rs]
            loss = sum(r["train_loss"] for r in rs) / len(rs)
            lines.append(f"| {str(keep).lower()} | {len(rs)} | {mean_std(accs[keep])} | {loss:.4f} |")
    if len(accs) == 2 and all(len(a) > 1 for a in accs.values()):
        diff = abs(mean(accs[True]) - mean(accs[False]))
        verdict, spread = noise_verdict(diff, accs.values())
        lines += ["", f"The means differ by {100 * diff:.2f} points, {verdict} twice the larger seed std ({100 * spread:.2f}).",
                  "The settings keep `true` (our choice, docs/methods.md §5: β on top of the base weight decay; the paper does not say which)."]
    return "\n".join(lines) + "\n"


def signin_weight_decay_table(runs: list[dict], command: str) -> str:
    lines = header(
        "The base weight decay on Sign-In's m and w, small setting",
        ["`sparsity.sign_in_weight_decay=true`: the base weight decay (5e-4) acts on m and w, an L1-like pull on θ = m ⊙ w",
         "(‖m‖² + ‖w‖² ≥ 2‖θ‖₁); `false`: no decay on them. Random PaI, AC/DC and RiGL with Sign-In at 90 % sparsity,",
         "LeNet-300-100 on Fashion-MNIST, 10 epochs; test top-1 %, mean ± sample std over the seeds. Neither Sign-In's paper",
         "(arXiv 2504.12801) nor docs/methods.md §3 says whether m and w are decayed, so both were measured."],
        command,
    )
    lines += ["| experiment | decay on m, w | seeds | test top-1 % | sparsity % | difference (true − false) |", "|---|---|---:|---:|---:|---|"]
    verdicts = []
    for name in sorted({r["config"]["name"] for r in runs}):
        accs = {}
        for keep in (True, False):
            rs = [r for r in runs if r["config"]["name"] == name and not r.get("failed")
                  and r["config"]["sparsity"].get("sign_in_weight_decay", True) == keep]
            if not rs:
                continue
            accs[keep] = [r["test_acc"] for r in rs]
            diff = ""
            if not keep and True in accs and all(len(a) > 1 for a in accs.values()):
                d = mean(accs[True]) - mean(accs[False])
                verdict, spread = noise_verdict(d, accs.values())
                verdicts.append(verdict)
                diff = f"{100 * d:+.2f} points, {verdict} twice the larger seed std ({100 * spread:.2f})"
            lines.append(f"| {name} | {str(keep).lower()} | {len(rs)} | {mean_std(accs[keep])} | {mean_std([r['sparsity'] for r in rs])} | {diff} |")
    if verdicts:
        beyond = verdicts.count("beyond")
        means = {keep: mean([r["test_acc"] for r in runs if not r.get("failed") and r["config"]["sparsity"].get("sign_in_weight_decay", True) == keep])
                 for keep in (True, False)}
        better = max(means, key=lambda keep: means[keep])
        choice = better if beyond else True
        lines += ["", (f"{beyond} of {len(verdicts)} methods differ beyond twice the seed std" if beyond else
                       f"None of the {len(verdicts)} methods differs beyond twice the seed std") +
                  f"; over all runs, `true` {pct(means[True])} %, `false` {pct(means[False])} %.",
                  "The rule (docs/methods.md §8): the better of the two over all runs becomes the default when some method differs beyond",
                  "twice the seed std, else `true` (the optimizer's decay on every weight tensor). "
                  f"Default: `sparsity.sign_in_weight_decay={str(choice).lower()}`."]
    return "\n".join(lines) + "\n"


TABLES = {
    "ham-grid": ham_grid_table, "mirror-presets": mirror_presets_table, "ham-weight-decay": ham_weight_decay_table,
    "signin-weight-decay": signin_weight_decay_table,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", choices=sorted(SWEEPS))
    parser.add_argument("--tables-only", action="store_true", help="do not run, only rebuild the table")
    parser.add_argument("--workers", type=int, default=2, help="training processes side by side (each with cores / workers torch threads)")
    parser.add_argument("--records", type=Path, help="the records folder (default: results/records/<the sweep's records>)")
    parser.add_argument("--output", type=Path, help="the table (default: the sweep's, under results/)")
    args = parser.parse_args()
    sweep = SWEEPS[args.sweep]
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    records = args.records or REPO / "results" / "records" / sweep.get("records", args.sweep)
    if not args.tables_only:
        run_sweep(args.sweep, sweep, args.workers)
        R.archive(REPO / sweep["dir"], records)
    runs = load_runs(records)
    if not runs:
        raise SystemExit(f"no records in {records}: run the sweep first")
    command = f"python scripts/small_experiments.py {args.sweep}"
    table = TABLES[args.sweep](runs, command)
    (args.output or REPO / sweep["output"]).write_text(table)
    print(table)


if __name__ == "__main__":
    main()
