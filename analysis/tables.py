"""The paper's tables from runs: our mean ± sample std over seeds beside the paper's value, and
HAM's gain over its baseline with Welch's test and Holm's correction.

A cell is a table position (setting, experiment, target sparsity, epochs) *and* an experiment
config: runs that differ in anything but the seed (:mod:`analysis.variants`) are never averaged;
they become variants, rows of their own labelled with the keys in which they differ from their
position's defaults (:mod:`training.cell`). Table 3 (dense): rows
baseline / HAM, columns SGD and SAM at each run length found. Table 4 (sparse): the paper's rows,
columns 80 / 90 / 95 %; a cell whose sparsity is not enforced (STR) also gives the achieved
sparsity. The one-shot table: trained dense models with and without HAM pruned by global magnitude
without fine-tuning, rows the pruned fraction. Each table comes as display rows (Markdown) and as
numeric records (CSV: mean, std, n, p, p_holm). Failed and unfinished runs are listed under the
tables, never averaged.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from analysis.runs import Run
from analysis.stats import holm, mean, mean_std, p_text, sample_std, welch
from analysis.variants import differences, experiment_config, split
from training.presets import missed_target

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference" / "paper_imagenet_resnet50.json"
#: Table 4's rows in the paper's order, each label whole (a row never relies on the one above it)
TABLE4_ROWS = [
    ("random", "Random PaI"), ("random_signin", "Random PaI + Sign-In"), ("random_ham", "Random PaI + HAM"),
    ("acdc", "AC/DC"), ("acdc_signin", "AC/DC + Sign-In"), ("acdc_ham", "AC/DC + HAM"),
    ("rigl", "RiGL"), ("rigl_signin", "RiGL + Sign-In"), ("rigl_ham", "RiGL + HAM"),
    ("spred", "spred"), ("pilot", "PILoT"), ("str", "STR"), ("str_ham", "STR + HAM"),
]
TABLE4_EXPERIMENTS = [experiment for experiment, _ in TABLE4_ROWS]
#: Table 3's experiments (dense training), each at the standard length and twice it
TABLE3_EXPERIMENTS = ["dense", "dense_ham", "dense_sam", "dense_sam_ham"]
TARGETS = (0.8, 0.9, 0.95)
STANDARD_EPOCHS = {"imagenet": 100, "small": 10}
#: the note above Table 4 when a cell states its achieved sparsity (STR's emerges from its weight decay)
EMERGENT_SPARSITY_NOTE = (
    "STR's sparsity emerges from its weight decay λ, one preset for all seeds (calibration/small.yaml for the small "
    "setting), and the seeds scatter around it by about ±0.6 points. A preset is therefore calibrated on the mean "
    "sparsity over the seeds (within ±0.5 points of the target: analysis/calibration.py), and a cell says `target "
    "missed` only when its mean misses. After @: the mean achieved sparsity; `k/n seeds off`: the seeds more than 0.5 "
    "points from the target."
)


class Rows(list):
    """A table's display rows (header first), with a note that applies to the whole table (``above``:
    a label every column shares, what a cell's notation means), written once above it by :func:`markdown`."""

    def __init__(self, rows: list[list[str]] = (), above: str = "") -> None:
        super().__init__(rows)
        self.above = above


def length_text(epochs: int, setting: str) -> str:
    """A run length as a column states it; in a scaled-down setting with the paper's length it stands
    for (``10 ep (paper: 100 ep)``)."""
    scale = STANDARD_EPOCHS["imagenet"] // STANDARD_EPOCHS[setting]
    return f"{epochs} ep" + (f" (paper: {epochs * scale} ep)" if scale != 1 else "")
#: (baseline, with HAM) pairs whose difference is HAM's gain
GAIN_PAIRS = [("dense", "dense_ham"), ("dense_sam", "dense_sam_ham"), ("random", "random_ham"), ("acdc", "acdc_ham"),
              ("rigl", "rigl_ham"), ("str", "str_ham")]
#: what a baseline and its + HAM row may differ in: HAM's settings, the name, the per-target knob
#: that the setting's presets choose with and without HAM (STR's weight decay)
HAM_KEYS = ("ham", "name", "sparsity.str_weight_decay", "sparsity.pilot_alpha", "sparsity.spred_weight_decay")
ALPHA = 0.05


class Key(NamedTuple):
    """A table cell: the experiment (without ``_200ep``), target, run length and variant label."""

    experiment: str
    target: float | None
    epochs: int
    variant: str

    @property
    def position(self) -> tuple[str, float | None, int]:
        return self.experiment, self.target, self.epochs


@functools.cache
def paper_reference() -> dict[str, Any]:
    """The paper's numbers (:data:`REFERENCE`), read once."""
    return json.loads(REFERENCE.read_text())


@dataclass
class Cell:
    runs: list[Run]

    @property
    def accs(self) -> list[float]:
        return [r.summary["test_acc"] for r in self.runs]  # type: ignore[index]

    @property
    def sparsities(self) -> list[float]:
        return [r.summary.get("sparsity") or 0.0 for r in self.runs]  # type: ignore[union-attr]

    @property
    def config(self) -> dict[str, Any]:
        return experiment_config(self.runs[0])

    @property
    def missed(self) -> int:
        """How many of the cell's runs missed their target sparsity (:func:`training.presets.missed_target`)."""
        return sum(missed_target(r.summary.get("sparsity"), r.target) for r in self.runs)  # type: ignore[union-attr]

    @property
    def mean_missed(self) -> bool:
        """Whether the mean sparsity over the seeds misses the target (the criterion of a calibrated
        preset: :data:`EMERGENT_SPARSITY_NOTE`)."""
        return missed_target(mean(self.sparsities), self.runs[0].target)

    def text(self, with_sparsity: bool = False) -> str:
        out = f"{mean_std(self.accs)} (n={len(self.accs)})"
        reached = f" @ {100 * mean(self.sparsities):.2f} %"
        if self.mean_missed:  # not the target's accuracy: say so, with the sparsity reached
            return out + reached + f", target missed ({self.missed}/{len(self.runs)} seeds off)"
        if self.missed:
            return out + reached + f" ({self.missed}/{len(self.runs)} seeds off)"
        return out + (reached if with_sparsity else "")


def base_name(experiment: str) -> str:
    return experiment.removesuffix("_200ep")


def position(run: Run) -> tuple[str, float | None, int]:
    return base_name(run.experiment), run.target, run.epochs


def duplicates(runs: list[Run]) -> list[Run]:
    """Finished runs whose position, experiment config and seed an earlier run (in the order given)
    already has (a run of the same config with another number of processes is no duplicate)."""
    seen, out = set(), []
    for run in runs:
        if run.status == "finished":
            key = (run.setting, *position(run), json.dumps(experiment_config(run), sort_keys=True, default=str), run.seed)
            if key in seen:
                out.append(run)
            seen.add(key)
    return out


def cells(runs: list[Run], setting: str) -> dict[Key, Cell]:
    """Finished runs of ``setting`` by position, split into variants (:func:`analysis.variants.split`);
    a second run of the same config and seed is left out (:func:`duplicates` lists it)."""
    skip = {id(r) for r in duplicates(runs)}
    by_position: dict[tuple[str, float | None, int], list[Run]] = {}
    for run in runs:
        if run.status == "finished" and run.setting == setting and id(run) not in skip:
            by_position.setdefault(position(run), []).append(run)
    return {Key(*where, label): Cell(members) for where, group in by_position.items() for label, members in split(group).items()}


def _labels(grouped: dict[Key, Cell], experiments: set[str]) -> list[str]:
    """The variant labels of these experiments' cells; ``""`` (the undivided row) first, always."""
    return [""] + sorted({k.variant for k in grouped if k.experiment in experiments} - {""})


def _cell_text(grouped: dict[Key, Cell], key: Key, with_sparsity: bool = False) -> str:
    if key in grouped:
        return grouped[key].text(with_sparsity)
    if key.variant == "" and any(k.position == key.position for k in grouped):
        return "variants below"  # runs at this position differ in more than the seed
    return "missing"


def _row_label(label: str, variant: str) -> str:
    return f"{label} [{variant}]" if variant else label


def _ref(value: list | None) -> str:
    if value is None:
        return "–"
    return f"{value[0]:.2f}" + (f" ± {value[1]:.2f}" if value[1] is not None else "")


def _lengths(grouped: dict[Key, Cell], setting: str, dense: bool) -> list[int]:
    """The run lengths found among the dense (or sparse) cells; the setting's standard if none."""
    found = sorted({k.epochs for k in grouped if k.experiment.startswith("dense") == dense})
    standard = STANDARD_EPOCHS[setting]
    return found or ([standard, 2 * standard] if dense else [standard])


def table3(runs: list[Run], setting: str) -> Rows:
    """Rows baseline / HAM (and their variants); columns SGD and SAM at each run length found."""
    reference = paper_reference()["dense"]
    grouped = cells(runs, setting)
    lengths = _lengths(grouped, setting, dense=True)
    header = [""] + [f"{opt} {length_text(e, setting)}" for opt in ("SGD", "SAM") for e in lengths]
    header += [f"paper {opt} {e} ep (ImageNet)" for opt in ("SGD", "SAM") for e in (100, 200)]
    rows = Rows([header])
    for label, suffix in (("Baseline", ""), ("HAM", "_ham")):
        experiments = {f"dense{sam}{suffix}" for sam in ("", "_sam")}
        for variant in _labels(grouped, experiments):
            row = [_row_label(label, variant)]
            row += [_cell_text(grouped, Key(f"dense{sam}{suffix}", None, e, variant)) for sam in ("", "_sam") for e in lengths]
            row += [_ref(reference[f"dense{sam}{suffix}"][length]) for sam in ("", "_sam") for length in ("100ep", "200ep")]
            rows.append(row)
    return rows


def table4(runs: list[Run], setting: str) -> Rows:
    """The paper's rows (and their variants), columns 80 / 90 / 95 % (per run length found, if several);
    a cell whose sparsity emerges (STR) states it, explained above the table."""
    reference = paper_reference()["sparse"]
    grouped = cells(runs, setting)
    lengths = _lengths(grouped, setting, dense=False)
    rows = Rows([["method"] + [f"{100 * t:g} % {length_text(e, setting)}" for e in lengths for t in TARGETS]  # also when all share it
                 + [f"paper {100 * t:g} % (ImageNet)" for t in TARGETS]])
    for experiment, label in TABLE4_ROWS:
        for variant in _labels(grouped, {experiment}):
            row = [_row_label(label, variant)]
            row += [_cell_text(grouped, Key(experiment, t, e, variant), experiment.startswith("str")) for e in lengths for t in TARGETS]
            rows.append(row + [_ref(reference[experiment].get(f"{t:g}")) for t in TARGETS])
    if any(k.experiment.startswith("str") for k in grouped):
        rows.above = EMERGENT_SPARSITY_NOTE
    return rows


def cell_records(runs: list[Run], setting: str, table: str) -> list[dict[str, Any]]:
    """Table 3's or 4's cells as numbers (percent): one record per cell, with the paper's value."""
    reference = paper_reference()["dense" if table == "3" else "sparse"]
    out = []
    for (experiment, target, epochs, variant), cell in sorted(cells(runs, setting).items(), key=str):
        if experiment.startswith("dense") != (table == "3") or experiment not in reference:
            continue
        if table == "3":
            column = {STANDARD_EPOCHS[setting]: "100ep", 2 * STANDARD_EPOCHS[setting]: "200ep"}.get(epochs)
            paper = reference[experiment].get(column) if column else None
        else:
            paper = reference[experiment].get(f"{target:g}")
        accs = cell.accs
        out.append({
            "setting": setting, "experiment": experiment, "variant": variant, "target": target, "epochs": epochs,
            "n": len(accs), "mean_pct": 100 * mean(accs), "std_pct": 100 * sample_std(accs) if len(accs) > 1 else None,
            "achieved_sparsity_pct": 100 * mean(cell.sparsities), "target_missed": cell.missed,
            "paper_mean_pct": paper[0] if paper else None, "paper_std_pct": paper[1] if paper else None,
        })
    return out


def _gain(ham: list[float], baseline: list[float]) -> dict[str, Any]:
    """HAM − baseline in points, with Welch's t, df and p when each side has two seeds or more."""
    out: dict[str, Any] = {"n_baseline": len(baseline), "n_ham": len(ham), "mean_baseline_pct": 100 * mean(baseline),
                           "mean_ham_pct": 100 * mean(ham), "gain_points": 100 * (mean(ham) - mean(baseline)),
                           "t": None, "df": None, "p": None, "p_holm": None}
    if len(ham) >= 2 and len(baseline) >= 2:
        _, out["t"], out["df"], out["p"] = welch(ham, baseline)
    return out


def _adjust(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holm's correction over the tests of one table (the records that have a p-value)."""
    tested = [r for r in records if r.get("p") is not None]
    for record, adjusted in zip(tested, holm([r["p"] for r in tested])):
        record["p_holm"] = adjusted
    return records


def gain_records(runs: list[Run], setting: str) -> list[dict[str, Any]]:
    """HAM minus its baseline per method, target, run length and variant. A baseline cell is paired
    with a + HAM cell whose experiment config differs only in :data:`HAM_KEYS`; a position where no
    pair is comparable is reported with the keys that differ (``not_comparable``), without a test."""
    grouped = cells(runs, setting)
    records = []
    for baseline, ham in GAIN_PAIRS:
        shared = {k.position[1:] for k in grouped if k.experiment == baseline} & {k.position[1:] for k in grouped if k.experiment == ham}
        for target, epochs in sorted(shared, key=str):
            sides = [[(k.variant, c) for k, c in grouped.items() if k.position == (name, target, epochs)] for name in (baseline, ham)]
            where = {"baseline": baseline, "with_ham": ham, "target": target, "epochs": epochs}
            pairs, mismatches = [], []
            for b_label, b in sides[0]:
                for h_label, h in sides[1]:
                    differ = differences(b.config, h.config, HAM_KEYS)
                    (mismatches if differ else pairs).append((b_label, h_label, b, h, differ))
            for b_label, h_label, b, h, _ in pairs:
                variant = b_label if b_label == h_label else " vs ".join(filter(None, (b_label, h_label)))
                records.append({**where, "variant": variant, **_gain(h.accs, b.accs)})
            if not pairs:
                differ = min((m[4] for m in mismatches), key=len)
                records.append({**where, "variant": "", "not_comparable": ", ".join(differ)})
    return _adjust(records)


def _where(target: float | None, epochs: int) -> list[str]:
    return ["–" if target is None else f"{100 * target:g} %", str(epochs)]


def gains(runs: list[Run], setting: str) -> Rows:
    """Display rows of :func:`gain_records`: the gain, Welch's t, df, raw p and Holm's p."""
    records = gain_records(runs, setting)
    with_variants = any(r["variant"] for r in records)
    rows = Rows([["baseline", "target", "epochs", *(["variant"] if with_variants else []), "HAM − baseline (points)", "t", "df", "p",
                  "p (Holm)", f"beyond the seed noise (Holm p < {ALPHA:g})"]])
    if not records:  # say why, instead of a table without rows
        found = sorted({k.experiment for k in cells(runs, setting)})
        pairs = ", ".join(f"{b}/{h}" for b, h in GAIN_PAIRS)
        rows.append(["none", "–", "–", "–", "–", "–", "–", "–",
                     f"empty: no target and run length has finished runs of both a baseline and its + HAM experiment ({pairs}); "
                     f"finished here: {', '.join(found) or 'none'}"])
    for r in records:
        head = [r["baseline"], *_where(r["target"], r["epochs"]), *([r["variant"] or "–"] if with_variants else [])]
        if "not_comparable" in r:
            rows.append(head + ["–", "–", "–", "–", "–", f"not comparable: the runs differ in {r['not_comparable']}"])
        elif r["p"] is None:
            rows.append(head + [f"{r['gain_points']:+.2f}", "–", "–", "–", "–", "needs 2+ seeds each"])
        else:
            rows.append(head + [f"{r['gain_points']:+.2f}", f"{r['t']:.2f}", f"{r['df']:.1f}", p_text(r["p"]), p_text(r["p_holm"]),
                                "yes" if r["p_holm"] < ALPHA else "no"])
    return rows


def _oneshot_groups(runs: list[Run], setting: str) -> dict[tuple[str, int, str], dict[bool, list[dict]]]:
    """Dense runs with one-shot results by (optimizer, epochs, variant), split by HAM off/on. A
    variant is a difference in anything but the seed: in anything but HAM's settings between the
    groups, and in HAM's settings between the + HAM runs of one group (``ham.alpha=20`` and
    ``ham.alpha=100`` are two cells, each beside the same dense runs), as Table 4 keys its cells."""
    skip = {id(r) for r in duplicates(runs)}
    by_position: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        if run.status == "finished" and run.setting == setting and id(run) not in skip and run.summary.get("oneshot"):  # type: ignore[union-attr]
            by_position.setdefault((run.config["optimizer"]["name"].upper(), run.epochs), []).append(run)
    groups: dict[tuple[str, int, str], dict[bool, list[dict]]] = {}
    for (optimizer, epochs), group in by_position.items():
        for variant, members in split(group, ignore=HAM_KEYS).items():
            dense = [r.summary["oneshot"] for r in members if not r.config["ham"]["enabled"]]  # type: ignore[index]
            with_ham = split([r for r in members if r.config["ham"]["enabled"]]) or {"": []}
            for ham_variant, ham_runs in with_ham.items():
                # the + HAM runs' label holds the keys they share with the dense runs (the group) and HAM's own
                label = ham_variant or variant
                groups[(optimizer, epochs, label)] = {False: dense, True: [r.summary["oneshot"] for r in ham_runs]}  # type: ignore[index]
    return groups


#: the BatchNorm statistics a pruned model is evaluated with, and the summary key of that accuracy:
#: those of training (the paper's protocol), or recalibrated on training batches after the prune
ONESHOT_STATISTICS = {"training": "test_acc", "recalibrated": "test_acc_bn_recalibrated"}


def oneshot_records(runs: list[Run], setting: str) -> list[dict[str, Any]]:
    """Per (optimizer, epochs, variant), BatchNorm statistics (:data:`ONESHOT_STATISTICS`; the
    recalibrated ones where the runs have them) and pruned fraction (``None``: unpruned): dense and
    dense + HAM accuracy (mean, std, n, percent) and HAM's gain with Welch's p and Holm's p over the table."""
    reference = paper_reference()["oneshot_pruning"]
    groups = _oneshot_groups(runs, setting)
    fractions = sorted({float(p["target"]) for g in groups.values() for rs in g.values() for r in rs for p in r["pruned"]})
    records = []
    for (optimizer, epochs, variant), sides in sorted(groups.items(), key=str):
        for statistics, key in ONESHOT_STATISTICS.items():
            if not any(key in r or any(key in p for p in r["pruned"]) for rs in sides.values() for r in rs):
                continue
            for fraction in [None, *fractions]:
                accs = {ham: [r[key] for r in sides[ham] if key in r] if fraction is None else
                        [p[key] for r in sides[ham] for p in r["pruned"] if float(p["target"]) == fraction and key in p] for ham in (False, True)}
                record: dict[str, Any] = {"optimizer": optimizer, "epochs": epochs, "variant": variant,
                                          "batch_norm_statistics": statistics, "pruned_fraction": fraction}
                for ham, name in ((False, "dense"), (True, "dense_ham")):
                    values = accs[ham]
                    record.update({f"n_{name}": len(values), f"mean_{name}_pct": 100 * mean(values) if values else None,
                                   f"std_{name}_pct": 100 * sample_std(values) if len(values) > 1 else None})
                gain = _gain(accs[True], accs[False]) if accs[True] and accs[False] else {}
                record.update({k: gain.get(k) for k in ("gain_points", "t", "df", "p", "p_holm")})
                paper = None if fraction is None or statistics != "training" else f"{fraction:g}"
                record.update({"paper_ham_pct": reference["ham"].get(paper), "paper_dense_pct": reference["baseline"].get(paper)})
                records.append(record)
    return _adjust(records)


def oneshot(runs: list[Run], setting: str) -> Rows:
    """Rows: unpruned, then each pruned fraction. Columns, per optimizer, run length and variant found
    among the dense runs with one-shot results: without HAM, with HAM (mean ± std, n) and HAM's gain
    with Welch's p and Holm's p; the same three again with BatchNorm statistics recalibrated after the
    prune when the runs have them; the paper's values (SGD, 100 epochs on ImageNet, no recalibration) beside them,
    in the same order (dense, then HAM). A variant that every column shares is said once, above the table."""
    records = oneshot_records(runs, setting)
    groups = list(dict.fromkeys((r["optimizer"], r["epochs"], r["variant"], r["batch_norm_statistics"]) for r in records)) \
        or [("SGD", STANDARD_EPOCHS[setting], "", "training")]
    shared = {g[2] for g in groups}
    above = f"Every column of ours: {shared.pop()}." if len(shared) == 1 and "" not in shared else ""
    header = ["pruned fraction"]
    for optimizer, epochs, variant, statistics in groups:
        where = (f"{optimizer} {length_text(epochs, setting)}" + (f" [{variant}]" if variant and not above else "")
                 + (", BN recalibrated" if statistics == "recalibrated" else ""))
        header += [f"dense {where}", f"dense + HAM {where}", f"HAM − dense {where} (points, Welch p, Holm p)"]
    rows = Rows([header + ["paper dense (ImageNet)", "paper HAM (ImageNet)"]], above)
    fractions = list(dict.fromkeys(r["pruned_fraction"] for r in records)) or [None]
    for fraction in fractions:
        row = ["0 (unpruned)" if fraction is None else f"{fraction:g}"]
        reference = None
        for group in groups:
            record = next((r for r in records if (r["optimizer"], r["epochs"], r["variant"], r["batch_norm_statistics"]) == group
                           and r["pruned_fraction"] == fraction), None)
            reference = reference or (record if group[3] == "training" else None)
            for name in ("dense", "dense_ham"):
                n = record[f"n_{name}"] if record else 0
                row.append("missing" if not n else
                           f"{record[f'mean_{name}_pct']:.2f}" + (f" ± {record[f'std_{name}_pct']:.2f}" if n > 1 else "") + f" (n={n})")
            if not record or record["gain_points"] is None:
                row.append("–")
            elif record["p"] is None:
                row.append(f"{record['gain_points']:+.2f} (needs 2+ seeds each for p)")
            else:
                row.append(f"{record['gain_points']:+.2f} (p {_p_phrase(record['p'])}, Holm p {_p_phrase(record['p_holm'])})")
        row += [f"{reference[k]:.2f}" if reference and reference[k] is not None else "–" for k in ("paper_dense_pct", "paper_ham_pct")]
        rows.append(row)
    return rows


def _p_phrase(p: float) -> str:
    text = p_text(p)
    return text if text.startswith("<") else f"= {text}"


def markdown_cell(text: str) -> str:
    """A cell's text as Markdown keeps it in its column: a ``|`` inside it (a variant label's) is
    escaped, a line break becomes a space."""
    return " ".join(str(text).split("\n")).replace("|", "\\|")


def markdown(rows: list[list[str]]) -> str:
    """The rows as a Markdown table (header first), after the note that applies to all of it (:class:`Rows`)."""
    cells = [[markdown_cell(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    above = textwrap.fill(getattr(rows, "above", ""), 110, break_long_words=False, break_on_hyphens=False)
    return (f"{above}\n\n" if above else "") + "\n".join(lines) + "\n"


def csv_text(records: list[dict[str, Any]]) -> str:
    """Numeric records as CSV (empty cells for missing values)."""
    if not records:
        return ""
    columns = list(dict.fromkeys(k for r in records for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, restval="")
    writer.writeheader()
    writer.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in records])
    return buffer.getvalue()


def not_averaged(runs: list[Run]) -> list[str]:
    """The failed and unfinished runs and the duplicates, one line each."""
    lines = [f"{r.status}: {r.source}" + (f" ({r.error.splitlines()[0]})" if r.error else "") for r in runs if r.status != "finished"]
    return lines + [f"duplicate of an earlier run (same config and seed): {r.source}" for r in duplicates(runs)]
