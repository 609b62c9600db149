"""HAM's α for a small model by the rule written before its grid (docs/methods.md §6).

For each α of the grid: dense + HAM and random PaI + HAM at 90 % sparsity, seeds 0, 1, 2 (β, the
recipe and everything else fixed). An α with a diverged run (failed, or a final accuracy at chance)
is not eligible. Per seed the score is the mean of the two runs' final test accuracies, and
``score(α)`` the mean over the seeds. The chosen α is the smallest eligible one whose score is at
least ``best − SE``, where ``SE = s / √n`` of the best α's per-seed scores (the one-standard-error
rule: differences inside the seed noise are ties, and ties go to the smaller α).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from analysis.runs import Run
from analysis.stats import mean, sample_std
from analysis.variants import differing_labels, split

#: the two experiments the rule scores, and the sparsity of the sparse one
RULE_EXPERIMENTS = ("dense_ham", "random_ham")
RULE_TARGET = 0.9
RULE_SEEDS = (0, 1, 2)
#: a final accuracy at or below this multiple of chance (1 / classes) counts as diverged
CHANCE_FACTOR = 1.5


class AlphaRuleError(ValueError):
    """The records cannot decide the rule (missing runs, runs that differ in more than the seed)."""


@dataclass
class AlphaRow:
    alpha: float
    accs: dict[str, dict[int, float]]  # experiment -> seed -> final test accuracy (finished runs)
    diverged: list[str] = field(default_factory=list)  # the runs that diverged, as "experiment seed N"

    @property
    def eligible(self) -> bool:
        return not self.diverged

    @property
    def seed_scores(self) -> list[float]:
        return [mean([self.accs[e][s] for e in RULE_EXPERIMENTS]) for s in RULE_SEEDS]

    @property
    def score(self) -> float:
        return mean(self.seed_scores)

    @property
    def standard_error(self) -> float:
        return sample_std(self.seed_scores) / math.sqrt(len(RULE_SEEDS))


@dataclass
class AlphaChoice:
    model: str
    rows: list[AlphaRow]  # by α, ascending

    @property
    def best(self) -> AlphaRow:
        return max((r for r in self.rows if r.eligible), key=lambda r: r.score)

    @property
    def threshold(self) -> float:
        return self.best.score - self.best.standard_error

    @property
    def alpha(self) -> float:
        return min(r.alpha for r in self.rows if r.eligible and r.score >= self.threshold)


def _model(run: Run) -> str:
    return run.config["model"]["name"]


def _diverged(run: Run) -> bool:
    if run.status == "failed":
        return True
    return run.summary["test_acc"] <= CHANCE_FACTOR / run.config["data"]["num_classes"]  # type: ignore[index]


def choose_alpha(runs: list[Run], model: str) -> AlphaChoice:
    """Apply the rule to the grid runs of ``model`` among ``runs`` (others are ignored). Raises
    :class:`AlphaRuleError` when an α lacks one of its six runs or when the runs of one α differ in
    anything but the seed."""
    grid = [r for r in runs if r.status in ("finished", "failed") and r.config and _model(r) == model
            and r.experiment in RULE_EXPERIMENTS and r.config["ham"]["enabled"] and r.seed in RULE_SEEDS
            and (r.experiment == "dense_ham" or float(r.config["sparsity"]["target"]) == RULE_TARGET)]
    if not grid:
        raise AlphaRuleError(f"no grid runs of model={model}: run `python scripts/small_experiments.py alpha-rule` first")
    rows = []
    for alpha in sorted({float(r.config["ham"]["alpha"]) for r in grid}):
        row = AlphaRow(alpha, {e: {} for e in RULE_EXPERIMENTS})
        for experiment in RULE_EXPERIMENTS:
            members = [r for r in grid if float(r.config["ham"]["alpha"]) == alpha and r.experiment == experiment]
            finished = [r for r in members if r.status == "finished"]
            variants = split(finished)
            if len(variants) > 1:
                raise AlphaRuleError(f"the {experiment} runs of model={model} at ham.alpha={alpha:g} differ in more than the seed "
                                     f"({' / '.join(differing_labels(finished))}): the rule compares one recipe")
            for seed in RULE_SEEDS:
                found = [r for r in members if r.seed == seed]
                if not found:
                    raise AlphaRuleError(f"model={model}, ham.alpha={alpha:g}: no {experiment} run with trainer.seed={seed}; "
                                         f"run `python scripts/small_experiments.py alpha-rule`")
                run = found[0]
                if _diverged(run):
                    row.diverged.append(f"{experiment} seed {seed}")
                else:
                    row.accs[experiment][seed] = run.summary["test_acc"]  # type: ignore[index]
        rows.append(row)
    if not any(r.eligible for r in rows):
        raise AlphaRuleError(f"every α of the grid diverged for model={model}")
    return AlphaChoice(model, rows)
