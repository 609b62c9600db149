"""The paper's claims where they can show at small scale: the experiments, their tables, a verdict per claim.

    python scripts/small_claims.py alpha-rule       # HAM's α per small model by the rule of docs/methods.md §6 -> results/alpha_rule.md
    python scripts/small_claims.py oneshot-bn       # one-shot prunability of the BatchNorm network -> results/compare/oneshot_bn.md
    python scripts/small_claims.py signin-period    # Sign-In on both models, its reset period varied -> results/signin_period.md
    python scripts/small_claims.py mirror-controls  # PILoT and spred against random PaI, explained -> results/mirror_controls.md
    python scripts/small_claims.py verdicts         # a verdict per claim, from the records -> results/compare/claims_small.md
    python scripts/small_claims.py all              # the four experiments in order, then the verdicts
    python scripts/small_claims.py <experiment> --tables-only   # rebuild a table from the committed records

Every experiment is a set of ``train.py`` multiruns on Fashion-MNIST (``setting=small``) in one sweep
directory, ``multirun/claims``, run by ``--workers`` processes side by side (2, one torch thread each);
runs that two experiments need (random PaI at 90 % without HAM, say) are trained once, and a rerun
resumes (skips) finished runs. The records go into ``results/records/claims`` and every table is
built from there. ``oneshot-bn`` needs HAM's α for ``cnn_small``, which ``alpha-rule`` chooses and
``configs/ham/small_bn.yaml`` holds (a test checks that the two agree); ``verdicts`` reads the small
suite's records (``results/records/paper-small``) and these.
Measured costs here (2 cores): alpha-rule about 90 min, oneshot-bn 10 min after alpha-rule (its
seeds 0-2 are the grid's), signin-period 25 min, mirror-controls 45 min.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from omegaconf import OmegaConf  # noqa: E402

from analysis import runs as R  # noqa: E402
from analysis import tables as T  # noqa: E402
from analysis.alpha_rule import AlphaRuleError, choose_alpha  # noqa: E402
from analysis.claims import ClaimError, verdicts  # noqa: E402
from analysis.runs import Run  # noqa: E402
from analysis.stats import mean, mean_std, p_text, pct, welch  # noqa: E402
from analysis.variants import differing_labels, split  # noqa: E402
from scripts.markdown_sections import replace_section  # noqa: E402
from scripts.result_files import FewerResults, strict_runs, write_result  # noqa: E402
from scripts.small_experiments import COMMON, header, run_sweep  # noqa: E402
from training.config import compose_config, flatten, validate  # noqa: E402
from training.presets import apply_preset, preset_for  # noqa: E402
from training.trajectory import ADDED_KEYS, trajectory_config, without_non_trajectory_keys  # noqa: E402

SWEEP_DIR = "multirun/claims"
RECORDS = REPO / "results" / "records" / "claims"
SUITE_RECORDS = REPO / "results" / "records" / "paper-small"
SMALL_MODELS = ("lenet300_100", "cnn_small")
#: the HAM config (configs/ham/<name>.yaml) that holds each small model's α
HAM_CONFIGS = {"lenet300_100": "small", "cnn_small": "small_bn"}
ALPHA_GRID = (5, 10, 20, 50, 100, 200)
SIGN_IN_PERIODS = (0.1, 0.2, 0.5, 1.0)
PILOT_INIT_CONSTANTS = (0.01, 0.1, 3.0)
MIRROR_LR_SCALES = (0.25, 0.5, 2.0)
LENGTHS = (20, 40)
ONESHOT_SPARSITIES = ("0.5", "0.7", "0.8", "0.9", "0.95")


@functools.cache
def setting_recipe() -> dict[str, Any]:
    """The small setting's run length and weight decay (configs/setting/small.yaml), as a selection
    for :func:`_matching`: the experiments vary both, the baseline cells are the setting's."""
    cfg = compose_config(["setting=small"])
    return {"trainer__epochs": cfg.trainer.epochs, "optimizer__weight_decay": cfg.optimizer.weight_decay}


def at_90(model: str, seeds: str = "0,1,2") -> list[str]:
    return [f"model={model}", "sparsity.target=0.9", f"trainer.seed={seeds}"]


def configured_alpha(model: str) -> float:
    """HAM's α that the configs give ``model`` (``configs/ham/<HAM_CONFIGS[model]>.yaml``)."""
    path = REPO / "configs" / "ham" / f"{HAM_CONFIGS[model]}.yaml"
    if not path.exists():
        raise SystemExit(f"error: {path.relative_to(REPO)} does not exist: run `python scripts/small_claims.py alpha-rule` and write "
                         f"the α it chooses for model={model} there")
    return float(OmegaConf.load(path).alpha)


def alpha_rule_overrides() -> list[list[str]]:
    return [o for model in SMALL_MODELS for o in
            [["+experiment=dense,random", *at_90(model)]]
            + [["+experiment=dense_ham,random_ham", f"ham.alpha={alpha}", "ham.beta=1e-3", *at_90(model)] for alpha in ALPHA_GRID]]


def oneshot_bn_overrides() -> list[list[str]]:
    """Dense and dense + HAM on cnn_small, 5 seeds (seeds 0-2 are the α grid's runs: the same jobs)."""
    alpha = configured_alpha("cnn_small")
    return [[experiment, *ham, *at_90("cnn_small", seeds)] for seeds in ("0,1,2", "3,4")
            for experiment, ham in (("+experiment=dense", []), ("+experiment=dense_ham", [f"ham.alpha={alpha:g}", "ham.beta=1e-3"]))]


def expand(multirun: list[str]) -> list[list[str]]:
    """The jobs of a multirun: one override list per combination of the comma-separated values."""
    options = [[f"{o.split('=', 1)[0]}={v}" for v in o.split("=", 1)[1].split(",")] for o in multirun]
    return [list(job) for job in itertools.product(*options)]


def to_train(multiruns: list[list[str]], sweep_dir: Path = REPO / SWEEP_DIR, records: Path = RECORDS) -> list[list[str]]:
    """The multiruns that have a job without a finished run of its configuration in the sweep
    directory or the archived records (composed here, compared by trajectory as
    ``scripts/paper_tables.py`` does); the others are left out, so that a rerun re-enters no
    finished run, and a fresh clone retrains nothing that is committed."""
    done = {json.dumps(without_non_trajectory_keys(r.config), sort_keys=True, default=str)
            for r in R.from_disk([d for d in (sweep_dir, records) if d.exists()]) if r.status == "finished"}
    out = []
    for multirun in multiruns:
        for job in expand(multirun):
            cfg = compose_config([*job, *COMMON])
            apply_preset(cfg)
            validate(cfg)
            if json.dumps(trajectory_config(cfg), sort_keys=True, default=str) not in done:
                out.append(multirun)
                break
        else:
            print(f"finished: {' '.join(multirun)}", flush=True)
    return out


def signin_period_overrides() -> list[list[str]]:
    """Sign-In at each reset period, and two controls of what its gain could be: Sign-In with the base
    weight decay on m and w, and random PaI without weight decay on its weights (Sign-In's m and w
    have none by default; biases and BatchNorm have none in either)."""
    periods = ",".join(f"{p:g}" for p in SIGN_IN_PERIODS)
    return [o for model in SMALL_MODELS for o in (
        ["+experiment=random_signin", f"sparsity.sign_in_period={periods}", *at_90(model)],
        ["+experiment=random_signin", "sparsity.sign_in_weight_decay=true", *at_90(model)],
        ["+experiment=random", "optimizer.weight_decay=0", *at_90(model)],
    )]


def preset_at_90(experiment: str) -> float:
    """The small setting's calibrated knob of ``experiment`` (pilot, spred) at 90 %."""
    cfg = compose_config([f"+experiment={experiment}", "setting=small", "sparsity.target=0.9"])
    preset, _ = preset_for(cfg)
    assert preset is not None, f"no small-setting preset for {experiment} at 90 %"
    return preset.value


def mirror_controls_overrides() -> list[list[str]]:
    lenet = at_90("lenet300_100")
    knobs = {"pilot": "pilot_alpha", "spred": "spred_weight_decay"}
    same_budget = [[f"+experiment={e}", f"trainer.epochs={n}", f"sparsity.{knob}={preset_at_90(e) * 10 / n:g}", *lenet]
                   for e, knob in knobs.items() for n in LENGTHS]
    return [
        ["+experiment=pilot,spred", *lenet],  # the 10-epoch runs (random PaI's are the α grid's)
        ["+experiment=pilot", "sparsity.pilot_alpha=0", *lenet],  # no penalty: the cost of m ⊙ w alone
        ["+experiment=spred", "sparsity.spred_weight_decay=0", *lenet],
        ["+experiment=pilot", "sparsity.pilot_init_constant=" + ",".join(f"{c:g}" for c in PILOT_INIT_CONSTANTS), *lenet],
        ["+experiment=pilot,spred", "sparsity.mirror_lr_scale=" + ",".join(f"{s:g}" for s in MIRROR_LR_SCALES), *lenet],
        ["+experiment=pilot,spred,random", "trainer.epochs=" + ",".join(map(str, LENGTHS)), *lenet],  # the 10-epoch presets
        *same_budget,  # the penalty scaled by 10 / epochs: the same total pull as in 10 epochs
    ]


# -- tables ---------------------------------------------------------------------------------------

def _model(run: Run) -> str:
    return run.config["model"]["name"]


class MixedCellError(ValueError):
    """The runs that one cell of a table selects differ in more than the seed."""


def _matching(runs: list[Run], seeds: range = range(3), **where) -> list[Run]:
    """Finished runs of the ``seeds`` whose dotted config keys (``__`` for ``.``) have the given values
    (``name`` is the experiment; a key added to the schema after a run counts with its earlier value).
    They must differ in nothing but the seed (:func:`analysis.variants.split`): a cell is one mean."""
    out = []
    for run in runs:
        if run.status == "finished" and run.seed in seeds:
            flat = {**ADDED_KEYS, **flatten(run.config)}
            if all(flat.get(k.replace("__", ".")) == v for k, v in where.items()):
                out.append(run)
    groups = split(out)
    if len(groups) > 1:
        where_text = ", ".join(f"{k.replace('__', '.')}={v}" for k, v in where.items())
        raise MixedCellError(f"the runs selected by {where_text} differ in more than the seed ({' | '.join(differing_labels(out))}); "
                             "add the differing keys to the cell's selection in scripts/small_claims.py")
    return out


def _accs(runs: list[Run], key: str = "test_acc") -> list[float]:
    return [r.summary[key] for r in runs]  # type: ignore[index]


def _difference(a: list[float], b: list[float]) -> str:
    if len(a) < 2 or len(b) < 2:
        return "–"
    diff, _, _, p = welch(a, b)
    return f"{100 * diff:+.2f} (p {p_text(p)})"


def alpha_rule_table(runs: list[Run], command: str) -> str:
    lines = header("HAM's α per small model, by the rule written before the grid",
                   ["The rule (docs/methods.md §6, committed before these runs): for each α (β = 1e-3), dense + HAM and random",
                    "PaI + HAM at 90 %, seeds 0-2, 10 epochs; an α with a diverged run is out; per seed the mean of the two final",
                    "test accuracies, score = their mean over seeds; chosen: the smallest α whose score is at least the best score",
                    "minus its standard error (the one-standard-error rule). Test top-1 %, mean ± sample std over the seeds."],
                   command)
    for model in SMALL_MODELS:
        try:
            choice = choose_alpha(runs, model)
        except AlphaRuleError as error:
            lines += [f"## {model}", "", f"Not decided: {error}.", ""]
            continue
        plain = {e: _accs(_matching(runs, name=e, model__name=model, ham__enabled=False, sparsity__target=0.9, **setting_recipe()))
                 for e in ("dense", "random")}
        lines += [f"## {model}", "", "| α | dense + HAM | random PaI + HAM, 90 % | score (± SE) | |", "|---:|---:|---:|---:|---|"]
        lines.append(f"| no HAM | {mean_std(plain['dense']) if plain['dense'] else '–'} | {mean_std(plain['random']) if plain['random'] else '–'} | "
                     f"{pct(mean(plain['dense'] + plain['random'])) if plain['dense'] and plain['random'] else '–'} | reference |")
        for row in choice.rows:
            if not row.eligible:
                lines.append(f"| {row.alpha:g} | – | – | – | diverged ({', '.join(row.diverged)}): out |")
                continue
            mark = "**chosen**" if row.alpha == choice.alpha else "best score" if row is choice.best else ""
            lines.append(f"| {row.alpha:g} | {mean_std(list(row.accs['dense_ham'].values()))} | {mean_std(list(row.accs['random_ham'].values()))} | "
                         f"{pct(row.score)} ± {100 * row.standard_error:.2f} | {mark} |")
        configured = configured_alpha(model) if (REPO / "configs" / "ham" / f"{HAM_CONFIGS[model]}.yaml").exists() else None
        agrees = "agrees with the rule" if configured == choice.alpha else f"**differs from the rule: set alpha: {choice.alpha:g} there**"
        lines += ["", f"Best score at α = {choice.best.alpha:g} ({pct(choice.best.score)} ± {100 * choice.best.standard_error:.2f}); "
                      f"threshold {pct(choice.threshold)}; chosen α = **{choice.alpha:g}**. "
                      + (f"`configs/ham/{HAM_CONFIGS[model]}.yaml` has α = {configured:g}: {agrees}." if configured is not None else
                         f"`configs/ham/{HAM_CONFIGS[model]}.yaml` does not exist yet."), ""]
    return "\n".join(lines)


def signin_period_table(runs: list[Run], command: str) -> str:
    lines = header("Sign-In's reset period, random PaI at 90 %",
                   ["Random PaI ± Sign-In (θ = m ⊙ w, (m, w) re-solved with m² − w² = 1 every period; `sparsity.sign_in_period` is a",
                    "fraction of training: 0.1 = every epoch of 10, 0.5 = once, after epoch 5, 1 = never: m ⊙ w without resets), and",
                    "the weight decay on the prunable weights (random PaI: on θ; Sign-In: on m and w, `sparsity.sign_in_weight_decay`).",
                    "Seeds 0-2, 10 epochs; test top-1 %, mean ± sample std; the difference to random PaI (weight decay 5e-4, the",
                    "setting's) with Welch's p (no correction)."],
                   command)
    for model in SMALL_MODELS:
        recipe = setting_recipe()
        where = {"model__name": model, "sparsity__target": 0.9, "ham__enabled": False, "trainer__epochs": recipe["trainer__epochs"]}
        base = _accs(_matching(runs, name="random", optimizer__weight_decay=recipe["optimizer__weight_decay"], **where))
        lines += [f"## {model}", "", "| | sign_in_period | weight decay on the prunable weights (m, w) | test top-1 % | − random PaI (points, p) |",
                  "|---|---:|---|---:|---|", f"| random PaI | – | 5e-4 | {mean_std(base) if base else 'not run'} | |"]
        rows = [("+ Sign-In", f"{p:g}", "none", _matching(runs, name="random_signin", sparsity__sign_in_period=p, sparsity__sign_in_weight_decay=False,
                                                         **where)) for p in SIGN_IN_PERIODS]
        rows.append(("+ Sign-In", "0.1", "5e-4", _matching(runs, name="random_signin", sparsity__sign_in_period=0.1,
                                                           sparsity__sign_in_weight_decay=True, **where)))
        rows.append(("random PaI", "–", "none", _matching(runs, name="random", optimizer__weight_decay=0.0, **where)))
        for label, period, decay, members in rows:
            accs = _accs(members)
            lines.append(f"| {label} | {period} | {decay} | {mean_std(accs) if accs else 'not run'} | {_difference(accs, base) if accs else ''} |")
        lines.append("")
    return "\n".join(lines)


def _mirror_rows(runs: list[Run]) -> list[tuple[str, str, list[Run], int]]:
    """(control, method, runs, epochs) of the mirror controls, in the order of the table."""
    lenet = [r for r in runs if _model(r) == "lenet300_100" and r.config["sparsity"]["target"] == 0.9]
    default = {"sparsity__pilot_init_constant": 1.0, "sparsity__mirror_lr_scale": 1.0}
    rows = []
    for method in ("pilot", "spred"):
        knob = "pilot_alpha" if method == "pilot" else "spred_weight_decay"
        preset = preset_at_90(method)
        own = [r for r in lenet if r.experiment == method]
        pick = lambda **w: _matching(own, **{**default, **w})  # noqa: E731
        rows.append(("the small setting's recipe", method, pick(trainer__epochs=10, **{f"sparsity__{knob}": preset}), 10))
        rows.append(("no penalty (m ⊙ w alone)", method, pick(trainer__epochs=10, **{f"sparsity__{knob}": 0.0}), 10))
        if method == "pilot":
            for c in PILOT_INIT_CONSTANTS:
                rows.append((f"m₀² − w₀² = {c:g} (ours: 1)", method, pick(trainer__epochs=10, sparsity__pilot_alpha=preset,
                                                                         sparsity__pilot_init_constant=c), 10))
        for s in MIRROR_LR_SCALES:
            rows.append((f"learning rate of m, w × {s:g}", method, pick(trainer__epochs=10, sparsity__mirror_lr_scale=s,
                                                                       **{f"sparsity__{knob}": preset}), 10))
        for n in LENGTHS:
            rows.append((f"{n} epochs, the 10-epoch penalty", method, pick(trainer__epochs=n, **{f"sparsity__{knob}": preset}), n))
            rows.append((f"{n} epochs, penalty × 10/{n}", method, pick(trainer__epochs=n, **{f"sparsity__{knob}": float(f"{preset * 10 / n:g}")}), n))
    return rows


def mirror_controls_table(runs: list[Run], command: str) -> str:
    lines = header("PILoT and spred against random PaI at 90 %, LeNet-300-100: controls",
                   ["Each control changes one thing of the small setting's recipe (10 epochs, the calibrated penalty at 90 %, m₀² − w₀² = 1,",
                    "the optimizer's learning rate on m and w). `before` / `after`: test top-1 % just before and after the final magnitude",
                    "prune to 90 % (no fine-tuning); random PaI at the same length beside it; seeds 0-2, mean ± sample std; the",
                    "difference after the prune − random PaI with Welch's p (no correction)."],
                   command)
    random = {n: _accs(_matching(runs, name="random", model__name="lenet300_100", ham__enabled=False, sparsity__target=0.9,
                                 **{**setting_recipe(), "trainer__epochs": n})) for n in (10, *LENGTHS)}
    dense = _accs(_matching(runs, name="dense", model__name="lenet300_100", ham__enabled=False, **setting_recipe()))
    lines += ["| control | method | before the prune % | after the prune % | random PaI, same length % | after − random PaI (points, p) |",
              "|---|---|---:|---:|---:|---|"]
    for control, method, members, epochs in _mirror_rows(runs):
        if not members:
            lines.append(f"| {control} | {method} | not run | | | |")
            continue
        after, before = _accs(members), _accs(members, "test_acc_before_prune")
        base = random.get(epochs, [])
        lines.append(f"| {control} | {method} | {mean_std(before)} | {mean_std(after)} | {mean_std(base) if base else '–'} | "
                     f"{_difference(after, base)} |")
    if dense:
        lines += ["", f"Dense LeNet-300-100 without HAM, same recipe, 10 epochs: {mean_std(dense)} % ({len(dense)} seeds)."]
    return "\n".join(lines) + "\n"


def oneshot_bn_table(runs: list[Run], command: str) -> str:
    bn = [r for r in runs if r.status == "finished" and _model(r) == "cnn_small" and r.experiment in ("dense", "dense_ham")
          and (not r.config["ham"]["enabled"] or float(r.config["ham"]["alpha"]) == configured_alpha("cnn_small"))]
    lines = header("One-shot pruning of the BatchNorm network without fine-tuning",
                   ["cnn_small (3 convolutions with BatchNorm) trained dense for 10 epochs with and without HAM (α from the rule,",
                    "results/alpha_rule.md), pruned by global magnitude at each fraction, evaluated as the paper does (BatchNorm",
                    "statistics of training) and after recalibrating the BatchNorm statistics on 100 training batches",
                    "(`BN recalibrated`: the weights are the same). Test top-1 %, mean ± sample std over the seeds (n); HAM's",
                    "gain with Welch's p and Holm's p over the table. The paper's columns: ImageNet ResNet-50 (reference data)."],
                   command)
    return "\n".join(lines) + "\n" + T.markdown(T.oneshot(bn, "small"))


def verdict_table(command: str, allow_fewer: bool = False) -> tuple[str, list[dict]]:
    """The verdict per claim (Markdown, and numeric records for the CSV), from records read strictly
    (:func:`scripts.result_files.strict_runs`)."""
    sources = {"suite": strict_runs([SUITE_RECORDS]), "claims": strict_runs([RECORDS], allow_fewer)}
    alphas = {model: configured_alpha(model) for model in SMALL_MODELS if (REPO / "configs" / "ham" / f"{HAM_CONFIGS[model]}.yaml").exists()}
    results = verdicts(sources, alphas)
    tested = sum(v.result is not None for v in results)
    lines = header("The paper's claims at small scale: a verdict per claim",
                   ["Ours: treated − baseline in test top-1 points on Fashion-MNIST, averaged over the cells where the paper reports the",
                    "claim, with its 95 % interval (Welch–Satterthwaite); Holm's p over the claims tested; `detectable`: the smallest",
                    f"true difference our seeds detect with power 0.8 at the Bonferroni level 0.05/{tested}. Verdict: `reproduced` (Holm p",
                    "< 0.05, the paper's sign), `opposite` (Holm p < 0.05, the other sign), `not reproduced` (not significant although",
                    "the paper's effect is at least `detectable`), `too small to tell` (the paper's effect is below `detectable`); a",
                    "claim of parity (±1 point) is `reproduced` when our 90 % interval lies inside ±1, `not reproduced` when outside.",
                    "`reproduced` speaks of the direction: compare the sizes in the columns. The paper's effect: the same average of",
                    "its ImageNet ResNet-50 differences (reference data, results/reference/); ImageNet leaves more room than",
                    "Fashion-MNIST. Definitions: analysis/claims.py."],
                   command)
    lines += ["| claim | model | where | paper (ImageNet, points) | ours (points, 95 % CI) | seeds | Holm p | detectable (points) | verdict |",
              "|---|---|---|---:|---|---|---:|---:|---|"]
    records = []
    for v in results:
        c = v.claim
        record = {"claim": c.text, "model": c.model, "where": c.where, "paper_points": v.paper, "verdict": v.verdict}
        if v.result is None:
            lines.append(f"| {c.text} | {c.model} | {c.where} | {v.paper:+.2f} | not run: `{c.command}` | | | | not run |")
        else:
            low, high = v.result.interval()
            seeds = ", ".join(sorted({f"{a}/{b}" for a, b in v.n}))
            lines.append(f"| {c.text} | {c.model} | {c.where} | {v.paper:+.2f} | {v.result.difference:+.2f} [{low:+.2f}, {high:+.2f}] | "
                         f"{seeds} | {p_text(v.p_holm)} | {v.detectable:.2f} | **{v.verdict}** |")  # type: ignore[arg-type]
            record.update({"ours_points": v.result.difference, "ci_low": low, "ci_high": high, "se": v.result.standard_error,
                           "df": v.result.df, "p": v.result.p, "p_holm": v.p_holm, "detectable_points": v.detectable,
                           "seeds_treated_baseline": seeds})
        records.append(record)
    lines += ["", "Seeds: treated/baseline per cell.", "HAM's α: " + ", ".join(f"{m} {a:g}" for m, a in alphas.items())
              + " (configs/ham/; the rule: results/alpha_rule.md)."]
    return "\n".join(lines) + "\n", records


# -- experiments ----------------------------------------------------------------------------------

def oneshot_prune(runs: list[Run]) -> None:
    """scripts/oneshot_prune.py on the trained cnn_small dense runs of the sweep directory."""
    alpha = configured_alpha("cnn_small")
    dirs = [r.source for r in runs if r.status == "finished" and _model(r) == "cnn_small" and r.experiment in ("dense", "dense_ham")
            and (not r.config["ham"]["enabled"] or float(r.config["ham"]["alpha"]) == alpha) and r.seed in range(5)]
    command = [sys.executable, "scripts/oneshot_prune.py", *dirs, "--sparsities", *ONESHOT_SPARSITIES]
    print("+", " ".join(command[1:3]), f"... ({len(dirs)} runs)", flush=True)
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


Experiment = tuple[Callable[[], list[list[str]]], Callable[[list[Run], str], str], str]
EXPERIMENTS: dict[str, Experiment] = {
    "alpha-rule": (alpha_rule_overrides, alpha_rule_table, "results/alpha_rule.md"),
    "oneshot-bn": (oneshot_bn_overrides, oneshot_bn_table, "results/compare/oneshot_bn.md"),
    "signin-period": (signin_period_overrides, signin_period_table, "results/signin_period.md"),
    "mirror-controls": (mirror_controls_overrides, mirror_controls_table, "results/mirror_controls.md"),
}


def write_verdicts(allow_fewer: bool = False) -> None:
    """The verdict table into results/compare (Markdown and CSV), and into the sections of README.md
    and results/README.md that open their results; never with fewer results than committed unless
    ``allow_fewer`` (:func:`scripts.result_files.write_result`)."""
    text, records = verdict_table("python scripts/small_claims.py verdicts", allow_fewer)
    out = REPO / "results" / "compare"
    write_result(out / "claims_small.md", text, allow_fewer)  # first: it refuses before anything is written
    write_result(out / "claims_small.csv", T.csv_text(records), allow_fewer=True)  # the same results, as numbers
    body = text.split("\n", 2)[2]  # without the "# ..." title and the blank line after it
    for readme in (REPO / "README.md", REPO / "results" / "README.md"):
        changed = replace_section(readme, "claims", body + "\nWhat each finding rests on, and what did not reproduce: docs/methods.md §10.")
        print(f"{'rewrote' if changed else 'unchanged'}: {readme} (its claims section)")
    print(text)


def run_experiment(name: str, tables_only: bool, workers: int, allow_fewer: bool = False) -> None:
    overrides, table, output = EXPERIMENTS[name]
    if not tables_only:
        run_sweep(name, {"dir": SWEEP_DIR, "overrides": to_train(overrides())}, workers)
        if name == "oneshot-bn":
            oneshot_prune(R.from_disk([REPO / SWEEP_DIR]))
        print(f"{R.archive(REPO / SWEEP_DIR, RECORDS)} records -> {RECORDS.relative_to(REPO)}", flush=True)
    text = table(strict_runs([RECORDS], allow_fewer), f"python scripts/small_claims.py {name}")
    print(text)
    write_result(REPO / output, text, allow_fewer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=[*EXPERIMENTS, "verdicts", "all"])
    parser.add_argument("--tables-only", action="store_true", help="train nothing: rebuild the table(s) from the records")
    parser.add_argument("--workers", type=int, default=2, help="training processes side by side (each with cores / workers torch threads)")
    parser.add_argument("--allow-fewer", action="store_true",
                        help="write a table even with fewer results than the committed one (records missing: 'not run' rows, fewer seeds)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        for name in EXPERIMENTS if args.experiment == "all" else [args.experiment] if args.experiment != "verdicts" else []:
            run_experiment(name, args.tables_only, args.workers, args.allow_fewer)
        if args.experiment in ("verdicts", "all"):
            write_verdicts(args.allow_fewer)
    except (AlphaRuleError, ClaimError, MixedCellError, FewerResults) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
