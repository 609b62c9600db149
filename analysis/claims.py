"""A verdict per claim of the paper, from run records: the paper's effect beside ours, with the
statistics that say whether ours could have shown it.

Each :class:`Claim` is a difference of test accuracies (treated − baseline) averaged over the cells
at which the paper reports it (HAM's gain at 80, 90 and 95 %; dense training with SGD and SAM at
two lengths): ``D = (1/k) Σ_i (mean treated_i − mean baseline_i)``, tested with Welch–Satterthwaite
(:func:`analysis.stats.contrast`). The one-shot claim averages each trained model's accuracy over
the pruned fractions the paper reports (one number per run, so the fractions of one model are
not counted as independent). The paper's effect is the same average over its ImageNet values.

Over the claims that have runs, Holm's correction controls the family-wise error. A verdict is:

* **reproduced**: Holm p < 0.05 and our difference has the paper's sign;
* **opposite**: Holm p < 0.05 and the other sign;
* **not reproduced**: not significant, although an effect as large as the paper's would have been
  detected with power 0.8 (the detectable effect at the Bonferroni level 0.05/m, Holm's strictest
  step, is at most the paper's);
* **too small to tell**: not significant, and the paper's effect is below what our seeds detect.

A claim of parity (spred against random PaI: the paper's differences go both ways, −1.2 to +0.8
points) has a ``margin`` instead and is judged by two one-sided tests, i.e. by the 90 % interval:
**reproduced** when it lies inside ±margin, **not reproduced** when it lies outside, else
**too small to tell**.

The paper's effects are ImageNet ResNet-50 differences (reference data); ours are on
Fashion-MNIST, where the accuracy has less room: the comparison of sizes is a yardstick, not a
prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.runs import Run
from analysis.stats import Contrast, contrast, holm, mean
from analysis.tables import base_name, paper_reference
from analysis.variants import differing_labels, split
from training.config import flatten

ALPHA = 0.05
POWER = 0.8
#: the pruned fractions of the poster's one-shot table
ONESHOT_FRACTIONS = (0.5, 0.7, 0.8, 0.9)
TARGETS = (0.8, 0.9, 0.95)


class ClaimError(ValueError):
    """The runs of one cell of a claim differ in more than the seed."""


@dataclass(frozen=True)
class Cell:
    """One position of a claim: the treated and the baseline experiment at a target and length,
    and the keys of the paper's reference file that hold their ImageNet values."""

    treated: str
    baseline: str
    target: float | None = None
    epochs: int = 10
    optimizer: str = "sgd"
    paper: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


@dataclass(frozen=True)
class Claim:
    text: str
    model: str  # model.name of the runs
    source: str  # which records: "suite" (results/records/paper-small) or "claims" (results/records/claims)
    cells: tuple[Cell, ...]
    where: str  # the cells in words
    oneshot: bool = False  # the metric: one-shot accuracy averaged over ONESHOT_FRACTIONS
    keys: tuple[tuple[str, Any], ...] = ()  # further config values every run must have (dotted keys)
    command: str = ""  # what trains the runs
    margin: float | None = None  # points: a claim of parity (|difference| < margin) instead of a direction


def _sparse(treated: str, baseline: str, targets=TARGETS) -> tuple[Cell, ...]:
    return tuple(Cell(treated, baseline, t, paper=(("sparse", treated, f"{t:g}"), ("sparse", baseline, f"{t:g}"))) for t in targets)


SUITE = "python scripts/small_suite.py"
CLAIMS_COMMAND = "python scripts/small_claims.py"
DENSE_CELLS = tuple(
    Cell(f"dense{sam}_ham", f"dense{sam}", None, epochs, optimizer,
         (("dense", f"dense{sam}_ham", length), ("dense", f"dense{sam}", length)))
    for sam, optimizer in (("", "sgd"), ("_sam", "sam")) for epochs, length in ((10, "100ep"), (20, "200ep"))
)
ONESHOT_CELL = Cell("dense_ham", "dense", paper=(("oneshot_pruning", "ham"), ("oneshot_pruning", "baseline")))

#: the paper's claims, as tested here (LeNet-300-100 from the small suite; the BatchNorm network
#: cnn_small from the claims experiments)
CLAIMS: tuple[Claim, ...] = (
    Claim("HAM improves dense training", "lenet300_100", "suite", DENSE_CELLS, "SGD and SAM, 10 and 20 epochs", command=SUITE),
    Claim("HAM improves dense training", "cnn_small", "claims", (DENSE_CELLS[0],), "SGD, 10 epochs",
          command=f"{CLAIMS_COMMAND} oneshot-bn"),
    Claim("HAM improves random PaI", "lenet300_100", "suite", _sparse("random_ham", "random"), "80 / 90 / 95 %", command=SUITE),
    Claim("HAM improves AC/DC", "lenet300_100", "suite", _sparse("acdc_ham", "acdc"), "80 / 90 / 95 %", command=SUITE),
    Claim("HAM improves RiGL", "lenet300_100", "suite", _sparse("rigl_ham", "rigl"), "80 / 90 / 95 %", command=SUITE),
    Claim("HAM improves STR", "lenet300_100", "suite", _sparse("str_ham", "str"), "80 / 90 / 95 % (STR: about those sparsities)",
          command=SUITE),
    Claim("dense + HAM is more prunable one-shot", "lenet300_100", "suite", (ONESHOT_CELL,),
          "pruned 50 / 70 / 80 / 90 %, no fine-tuning", oneshot=True, command=SUITE),
    Claim("dense + HAM is more prunable one-shot", "cnn_small", "claims", (ONESHOT_CELL,),
          "pruned 50 / 70 / 80 / 90 %, no fine-tuning, no BatchNorm recalibration", oneshot=True,
          command=f"{CLAIMS_COMMAND} oneshot-bn"),
    Claim("PILoT beats random PaI", "lenet300_100", "suite", _sparse("pilot", "random"), "80 / 90 / 95 %", command=SUITE),
    Claim("spred is on a par with random PaI (±1 point)", "lenet300_100", "suite", _sparse("spred", "random"), "80 / 90 / 95 %",
          command=SUITE, margin=1.0),
    Claim("Sign-In improves random PaI", "lenet300_100", "suite", _sparse("random_signin", "random"), "80 / 90 / 95 %",
          command=SUITE),
    Claim("Sign-In improves random PaI", "cnn_small", "claims", _sparse("random_signin", "random", (0.9,)), "90 %",
          keys=(("sparsity.sign_in_period", 0.1), ("sparsity.sign_in_weight_decay", False), ("optimizer.weight_decay", 5e-4)),
          command=f"{CLAIMS_COMMAND} signin-period"),
)


@dataclass
class Verdict:
    claim: Claim
    paper: float  # points
    result: Contrast | None = None  # in points; None: the claim has no runs yet
    n: list[tuple[int, int]] = field(default_factory=list)  # seeds per cell (treated, baseline)
    p_holm: float | None = None
    detectable: float | None = None  # points, at the Bonferroni level ALPHA / m
    verdict: str = "not run"


def _reference(path: tuple[str, ...]) -> Any:
    node = paper_reference()
    for part in path:
        node = node[part]
    return node


def paper_effect(claim: Claim) -> float:
    """The paper's difference in points, averaged like ours (over its cells, or over the one-shot fractions)."""
    cell = claim.cells[0]
    if claim.oneshot:
        treated, baseline = (_reference(p) for p in cell.paper)
        return mean([treated[f"{f:g}"] - baseline[f"{f:g}"] for f in ONESHOT_FRACTIONS])
    return mean([_reference(c.paper[0])[0] - _reference(c.paper[1])[0] for c in claim.cells])


def _selected(run: Run, claim: Claim, experiment: str, cell: Cell, alphas: dict[str, float]) -> bool:
    config = run.config
    if run.status != "finished" or config["model"]["name"] != claim.model or base_name(run.experiment) != experiment:
        return False
    if run.epochs != cell.epochs or config["optimizer"]["name"] != cell.optimizer or run.target != cell.target:
        return False
    if config["ham"]["enabled"] and float(config["ham"]["alpha"]) != alphas[claim.model]:
        return False
    flat = flatten(config)
    return all(flat.get(key) == value for key, value in claim.keys) and (not claim.oneshot or bool(run.summary.get("oneshot")))  # type: ignore[union-attr]


def _value(run: Run, oneshot: bool) -> float:
    summary = run.summary or {}
    if not oneshot:
        return summary["test_acc"]
    pruned = {float(p["target"]): p["test_acc"] for p in summary["oneshot"]["pruned"]}
    missing = [f for f in ONESHOT_FRACTIONS if f not in pruned]
    if missing:
        raise ClaimError(f"{run.source}: its one-shot results lack the pruned fractions {missing}; "
                         f"run scripts/oneshot_prune.py with --sparsities {' '.join(f'{f:g}' for f in ONESHOT_FRACTIONS)}")
    return mean([pruned[f] for f in ONESHOT_FRACTIONS])


def samples(runs: list[Run], claim: Claim, alphas: dict[str, float]) -> list[tuple[list[float], list[float]]] | None:
    """Per cell, the treated and the baseline values (fractions); None when a cell lacks runs.
    Raises :class:`ClaimError` when the runs of one side of a cell differ in anything but the seed."""
    out = []
    for cell in claim.cells:
        sides = []
        for experiment in (cell.treated, cell.baseline):
            members = [r for r in runs if _selected(r, claim, experiment, cell, alphas)]
            variants = split(members)
            if len(variants) > 1:
                raise ClaimError(f"claim '{claim.text}' ({claim.model}): the {experiment} runs at target {cell.target} differ in more "
                                 f"than the seed ({' / '.join(differing_labels(members))}); they are never averaged")
            sides.append([_value(r, claim.oneshot) for r in members])
        if any(len(side) < 2 for side in sides):
            return None
        out.append((sides[0], sides[1]))
    return out


def verdicts(runs_by_source: dict[str, list[Run]], alphas: dict[str, float]) -> list[Verdict]:
    """Every claim of :data:`CLAIMS` against the runs of its source; ``alphas``: HAM's α per model
    (the rule's choice, docs/methods.md §6): HAM runs at another α are left out, and a model
    without one has its claims "not run"."""
    results = []
    for claim in CLAIMS:
        verdict = Verdict(claim, paper_effect(claim))
        cells = samples(runs_by_source.get(claim.source, []), claim, alphas) if claim.model in alphas else None
        if cells is not None:
            points = [([100 * v for v in a], [100 * v for v in b]) for a, b in cells]
            verdict.result = contrast(points)
            verdict.n = [(len(a), len(b)) for a, b in cells]
        results.append(verdict)
    tested = [v for v in results if v.result is not None]
    for verdict, adjusted in zip(tested, holm([v.result.p for v in tested])):  # type: ignore[union-attr]
        result = verdict.result
        assert result is not None
        verdict.p_holm = adjusted
        verdict.detectable = result.detectable(ALPHA / len(tested), POWER)
        same_sign = (result.difference > 0) == (verdict.paper > 0)
        if verdict.claim.margin is not None:
            low, high = result.interval(1 - 2 * ALPHA)
            margin = verdict.claim.margin
            verdict.verdict = ("reproduced" if -margin < low and high < margin else
                               "not reproduced" if high <= -margin or low >= margin else "too small to tell")
        elif adjusted < ALPHA:
            verdict.verdict = "reproduced" if same_sign else "opposite"
        elif verdict.detectable <= abs(verdict.paper):
            verdict.verdict = "not reproduced"
        else:
            verdict.verdict = "too small to tell"
    return results
