"""The paper's tables from runs: cells grouped by (setting, experiment, target, epochs), our mean ±
sample std over seeds beside the paper's value, and HAM's gain over its baseline with Welch's test.

Table 3 (dense): rows baseline / HAM, columns SGD and SAM at the setting's standard and doubled run
length (ImageNet 100 / 200 epochs). Table 4 (sparse): the paper's rows, columns 80 / 90 / 95 %; a
cell whose sparsity is not enforced (STR) also gives the achieved sparsity. The one-shot table:
trained dense models with and without HAM pruned by global magnitude without fine-tuning, rows the
pruned fraction. Failed and unfinished runs are listed under the tables, never averaged.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from analysis.runs import Run
from analysis.stats import mean, mean_std, welch

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference" / "paper_imagenet_resnet50.json"
TABLE4_ROWS = [
    ("random", "Random PaI"), ("random_signin", "+ Sign-In"), ("random_ham", "+ HAM"),
    ("acdc", "AC/DC"), ("acdc_signin", "+ Sign-In"), ("acdc_ham", "+ HAM"),
    ("rigl", "RiGL"), ("rigl_signin", "+ Sign-In"), ("rigl_ham", "+ HAM"),
    ("spred", "spred"), ("pilot", "PILoT"), ("str", "STR"), ("str_ham", "+ HAM"),
]
TARGETS = (0.8, 0.9, 0.95)
STANDARD_EPOCHS = {"imagenet": 100, "small": 10}
#: (baseline, with HAM) pairs whose difference is HAM's gain
GAIN_PAIRS = [("dense", "dense_ham"), ("dense_sam", "dense_sam_ham"), ("random", "random_ham"), ("acdc", "acdc_ham"),
              ("rigl", "rigl_ham"), ("str", "str_ham")]


@dataclass
class Cell:
    accs: list[float]
    sparsities: list[float]

    def text(self, with_sparsity: bool = False) -> str:
        if not self.accs:
            return "missing"
        out = f"{mean_std(self.accs)} (n={len(self.accs)})"
        return out + (f" @ {100 * mean(self.sparsities):.2f} %" if with_sparsity else "")


def base_name(experiment: str) -> str:
    return experiment.removesuffix("_200ep")


def cell_key(run: Run) -> tuple[str, float | None, int]:
    return base_name(run.experiment), run.target, run.epochs


def duplicates(runs: list[Run]) -> list[Run]:
    """Finished runs whose cell and seed an earlier run (in the order given) already has."""
    seen, out = set(), []
    for run in runs:
        if run.status == "finished":
            key = (run.setting, *cell_key(run), run.seed)
            if key in seen:
                out.append(run)
            seen.add(key)
    return out


def cells(runs: list[Run], setting: str) -> dict[tuple[str, float | None, int], Cell]:
    """Finished runs of ``setting`` grouped by (experiment without ``_200ep``, target, epochs); a
    second run of the same cell and seed is left out (:func:`duplicates` lists it)."""
    out: dict[tuple[str, float | None, int], Cell] = {}
    skip = {id(r) for r in duplicates(runs)}
    for run in runs:
        if run.status != "finished" or run.setting != setting or id(run) in skip:
            continue
        assert run.summary is not None
        cell = out.setdefault(cell_key(run), Cell([], []))
        cell.accs.append(run.summary["test_acc"])
        cell.sparsities.append(run.summary.get("sparsity") or 0.0)
    return out


def _ref(value: list | None) -> str:
    if value is None:
        return "–"
    return f"{value[0]:.2f}" + (f" ± {value[1]:.2f}" if value[1] is not None else "")


def _lengths(grouped: dict, setting: str, dense: bool) -> list[int]:
    """The run lengths found among the dense (or sparse) cells; the setting's standard if none."""
    found = sorted({epochs for (experiment, _, epochs) in grouped if experiment.startswith("dense") == dense})
    standard = STANDARD_EPOCHS[setting]
    return found or ([standard, 2 * standard] if dense else [standard])


def table3(runs: list[Run], setting: str) -> list[list[str]]:
    """Rows baseline / HAM; columns SGD and SAM at each run length found (100 / 200 on ImageNet)."""
    reference = json.loads(REFERENCE.read_text())["dense"]
    grouped = cells(runs, setting)
    lengths = _lengths(grouped, setting, dense=True)
    header = [""] + [f"{opt} {e} ep" for opt in ("SGD", "SAM") for e in lengths]
    header += [f"paper {opt} {e} ep (ImageNet)" for opt in ("SGD", "SAM") for e in (100, 200)]
    rows = [header]
    for label, suffix in (("Baseline", ""), ("HAM", "_ham")):
        row = [label]
        for sam in ("", "_sam"):
            for epochs in lengths:
                row.append(grouped.get((f"dense{sam}{suffix}", None, epochs), Cell([], [])).text())
        for sam in ("", "_sam"):
            for length in ("100ep", "200ep"):
                row.append(_ref(reference[f"dense{sam}{suffix}"][length]))
        rows.append(row)
    return rows


def table4(runs: list[Run], setting: str) -> list[list[str]]:
    """The paper's rows, columns 80 / 90 / 95 % (per run length found, if several)."""
    reference = json.loads(REFERENCE.read_text())["sparse"]
    grouped = cells(runs, setting)
    lengths = _lengths(grouped, setting, dense=False)
    tag = (lambda e: f" {e} ep") if len(lengths) > 1 else (lambda e: "")
    rows = [["method"] + [f"{100 * t:g} %{tag(e)}" for e in lengths for t in TARGETS]
            + [f"paper {100 * t:g} % (ImageNet)" for t in TARGETS]]
    for experiment, label in TABLE4_ROWS:
        row = [label]
        for epochs in lengths:
            for target in TARGETS:
                cell = grouped.get((experiment, target, epochs), Cell([], []))
                row.append(cell.text(with_sparsity=experiment.startswith("str")))
        row += [_ref(reference[experiment].get(f"{t:g}")) for t in TARGETS]
        rows.append(row)
    return rows


def gains(runs: list[Run], setting: str, alpha: float = 0.05) -> list[list[str]]:
    """HAM minus its baseline per method and target: Welch's two-sided t-test over the seeds."""
    grouped = cells(runs, setting)
    rows = [["baseline", "target", "epochs", "HAM − baseline (points)", "t", "df", "p", f"beyond the seed noise (p < {alpha:g})"]]
    for baseline, ham in GAIN_PAIRS:
        keys = sorted({k[1:] for k in grouped if k[0] == baseline} & {k[1:] for k in grouped if k[0] == ham}, key=str)
        for target, epochs in keys:
            a, b = grouped[(ham, target, epochs)].accs, grouped[(baseline, target, epochs)].accs
            where = ["–" if target is None else f"{100 * target:g} %", str(epochs)]
            if len(a) < 2 or len(b) < 2:
                diff = mean(a) - mean(b)
                rows.append([baseline, *where, f"{100 * diff:+.2f}", "–", "–", "–", "needs 2+ seeds each"])
                continue
            diff, t, df, p = welch(a, b)
            rows.append([baseline, *where, f"{100 * diff:+.2f}", f"{t:.2f}", f"{df:.1f}", f"{p:.3f}", "yes" if p < alpha else "no"])
    return rows


def _gain_text(ham: list[float], baseline: list[float]) -> str:
    if not ham or not baseline:
        return "–"
    if len(ham) < 2 or len(baseline) < 2:
        return f"{100 * (mean(ham) - mean(baseline)):+.2f} (needs 2+ seeds each for p)"
    diff, _, _, p = welch(ham, baseline)
    return f"{100 * diff:+.2f} (p={p:.3f})"


def oneshot(runs: list[Run], setting: str) -> list[list[str]]:
    """Rows: unpruned, then each pruned fraction. Columns, per optimizer and run length found among
    the dense runs with one-shot results: without HAM, with HAM (mean ± std over the seeds, n) and
    HAM's gain with Welch's p; the paper's values (SGD, 100 epochs on ImageNet) beside them."""
    reference = json.loads(REFERENCE.read_text())["oneshot_pruning"]
    skip = {id(r) for r in duplicates(runs)}
    pruned: dict[tuple[str, int], dict[bool, list[dict]]] = {}
    for run in runs:
        if run.status == "finished" and run.setting == setting and id(run) not in skip and run.summary.get("oneshot"):
            group = pruned.setdefault((run.config["optimizer"]["name"].upper(), run.epochs), {False: [], True: []})
            group[bool(run.config["ham"]["enabled"])].append(run.summary["oneshot"])
    groups = sorted(pruned) or [("SGD", STANDARD_EPOCHS[setting])]
    fractions = sorted({float(p["target"]) for g in pruned.values() for rs in g.values() for r in rs for p in r["pruned"]})
    header = ["pruned fraction"]
    for optimizer, epochs in groups:
        where = f"{optimizer} {epochs} ep"
        header += [f"dense {where}", f"dense + HAM {where}", f"HAM − dense {where} (points, Welch p)"]
    rows = [header + ["paper HAM (ImageNet)", "paper dense (ImageNet)"]]
    for fraction in [None, *fractions]:
        row = ["0 (unpruned)" if fraction is None else f"{fraction:g}"]
        for group in groups:
            accs = {}
            for ham in (False, True):
                results = pruned.get(group, {}).get(ham, [])
                if fraction is None:
                    accs[ham] = [r["test_acc"] for r in results]
                else:
                    accs[ham] = [p["test_acc"] for r in results for p in r["pruned"] if float(p["target"]) == fraction]
                row.append(f"{mean_std(accs[ham])} (n={len(accs[ham])})" if accs[ham] else "missing")
            row.append(_gain_text(accs[True], accs[False]))
        key = None if fraction is None else f"{fraction:g}"
        row += [f"{reference[side][key]:.2f}" if key in reference[side] else "–" for side in ("ham", "baseline")]
        rows.append(row)
    return rows


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def not_averaged(runs: list[Run]) -> list[str]:
    """The failed and unfinished runs and the duplicates, one line each."""
    lines = [f"{r.status}: {r.source}" + (f" ({r.error.splitlines()[0]})" if r.error else "") for r in runs if r.status != "finished"]
    return lines + [f"duplicate of an earlier run (same cell and seed): {r.source}" for r in duplicates(runs)]
