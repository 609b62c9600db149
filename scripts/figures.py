"""Figures from run records, each made by one command into the file you name (PNG, and SVG beside it):

    python scripts/figures.py sign-flips results/records/paper-small --output results/figures/sign-flips.png
    python scripts/figures.py accuracy-sparsity results/records/paper-small --output results/figures/accuracy-sparsity.png
    python scripts/figures.py ham-grid results/records/ham-grid --output results/figures/ham-grid.png

Sources are records folders or run/sweep directories (anything ``scripts/compare.py`` reads); the
sign-flip figure needs the runs' histories (``history.jsonl``, or ``history`` in a record). Titles
name the model and data set of the runs. Runs that differ in anything but the seed are plotted
as separate series (labelled with the keys in which they differ from the setting's defaults, one
marker shape each), never averaged. ``--help`` says which runs each figure takes. The theory experiment's
figure is made by ``scripts/theory_experiment.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analysis import runs as R  # noqa: E402
from analysis.stats import mean, sample_std  # noqa: E402
from analysis.tables import TABLE4_ROWS, cells, duplicates  # noqa: E402
from analysis.variants import differences, differing_labels, experiment_config, split  # noqa: E402

MODEL_NAMES = {"lenet300_100": "LeNet-300-100", "lenet5": "LeNet-5", "cnn": "a small CNN", "resnet20": "ResNet-20",
               "resnet18": "ResNet-18", "resnet50": "ResNet-50"}
#: the accuracy-sparsity figure's panels: a title and its Table 4 rows (every row of the table, one colour each)
ACCURACY_SPARSITY_PANELS = (("Random PaI", ("random", "random_signin", "random_ham")), ("AC/DC", ("acdc", "acdc_signin", "acdc_ham")),
                            ("RiGL", ("rigl", "rigl_signin", "rigl_ham")), ("STR, spred, PILoT", ("str", "str_ham", "spred", "pilot")))
#: a row's line style and whether its markers are filled, by the end of its experiment's name
ACCURACY_SPARSITY_STYLES = {"_ham": ("-", True), "_signin": (":", False), "": ("--", False)}
ROW_LABELS = dict(TABLE4_ROWS)
#: one marker shape per variant
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: the commands that make the runs of the sign-flip and accuracy-sparsity figures
SIGN_FLIPS_COMMAND = "python train.py -m +experiment=random,random_signin,random_ham setting=small sparsity.target={target:g}"
ACCURACY_SPARSITY_COMMAND = "python scripts/small_suite.py --parts table4"
DATA_NAMES = {"fashion_mnist": "Fashion-MNIST", "ffcv_imagenet": "ImageNet", "imagefolder": "an image folder", "synthetic": "synthetic data"}


def model_and_data(runs: list[R.Run]) -> str:
    """``LeNet-300-100 on Fashion-MNIST`` for the finished runs (several pairs: joined with ``;``)."""
    pairs = sorted({(MODEL_NAMES.get(r.config["model"]["name"], r.config["model"].get("timm_name") or r.config["model"]["name"]),
                     DATA_NAMES.get(r.config["data"]["name"], r.config["data"]["name"])) for r in runs if r.status == "finished"})
    return "; ".join(f"{model} on {data}" for model, data in pairs) or "no finished runs"


def _history(run: R.Run) -> list[dict]:
    if run.summary and "history" in run.summary:
        return run.summary["history"]
    path = Path(run.source) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sign_flips(runs: list[R.Run], target: float = 0.9) -> Figure:
    """Sign flips of the prunable weights per epoch (mean over seeds): random PaI, + Sign-In, + HAM."""
    fig, ax = plt.subplots(figsize=(5.8, 3.8))
    skip = {id(r) for r in duplicates(runs)}
    used = []
    for experiment, label in (("random", "random PaI"), ("random_signin", "+ Sign-In"), ("random_ham", "+ HAM")):
        chosen = [r for r in runs if r.status == "finished" and id(r) not in skip and r.experiment == experiment and r.target == target
                  and _history(r)]
        for variant, members in split(chosen).items():
            histories = [_history(r) for r in members]
            epochs = min(len(h) for h in histories)
            flips = [sum(h[e]["sign_flips"] for h in histories) / len(histories) for e in range(epochs)]
            name = f"{label} [{variant}]" if variant else label
            ax.plot(range(1, epochs + 1), flips, marker="o", label=f"{name} (n={len(histories)})")
            used += members
    if not used:
        raise SystemExit(f"no finished random/random_signin/random_ham runs at {target:g} with a history in the sources: run them with "
                         f"`{SIGN_FLIPS_COMMAND.format(target=target)}`")
    ax.set(xlabel="epoch", ylabel="sign flips per epoch", yscale="log",
           title=f"Sign flips, random PaI at {100 * target:g} %\n{model_and_data(used)}")
    ax.legend()
    return fig


def accuracy_sparsity(runs: list[R.Run]) -> Figure:
    """Test accuracy against the achieved sparsity (the target's, where the method enforces it; STR's
    mean otherwise) for every Table 4 row: one panel per family (:data:`ACCURACY_SPARSITY_PANELS`),
    one colour per row, the baseline dashed with open markers, + Sign-In dotted, + HAM solid. A series
    is one row at one run length and variant, connected across its targets: runs of another length or
    variant (anything but the seed: :mod:`analysis.variants`) are series of their own, named in the
    legend (``10 ep`` when lengths differ), never joined or averaged; error bars: sample std over seeds.
    A panel whose rows have no runs is left out, and the title says which rows are."""
    settings = sorted({r.setting for r in runs if r.status == "finished"})
    series = []  # (panel, colour, experiment, epochs, setting, variant, points)
    for setting in settings:
        grouped = cells(runs, setting)
        for panel, (_, experiments) in enumerate(ACCURACY_SPARSITY_PANELS):
            for colour, experiment in enumerate(experiments):
                for epochs, variant in sorted({(k.epochs, k.variant) for k in grouped if k.experiment == experiment and k.target is not None}):
                    points = sorted((k.target, c) for k, c in grouped.items()
                                    if (k.experiment, k.epochs, k.variant) == (experiment, epochs, variant) and k.target is not None)
                    series.append((panel, colour, experiment, epochs, setting, variant, points))
    if not series:
        raise SystemExit(f"no finished sparse runs of a Table 4 experiment in the sources: run them with `{ACCURACY_SPARSITY_COMMAND}`")
    panels = sorted({s[0] for s in series})
    rows = 1 if len(panels) <= 2 else 2  # four panels read best as two by two
    columns = -(-len(panels) // rows)
    fig, grid = plt.subplots(rows, columns, figsize=(5.6 * columns, 4.4 * rows + 0.6), squeeze=False, sharey=True)
    axes = list(grid.flat)
    for unused in axes[len(panels):]:
        unused.remove()
    lengths = sorted({s[3] for s in series})
    variants = sorted({s[5] for s in series})  # the same variant keeps its marker across rows
    used, seeds = [], set()
    for panel, colour, experiment, epochs, setting, variant, points in series:
        ax = axes[panels.index(panel)]
        style, filled = ACCURACY_SPARSITY_STYLES[next(k for k in ACCURACY_SPARSITY_STYLES if experiment.endswith(k))]
        used += [r for _, c in points for r in c.runs]
        seeds |= {len(c.runs) for _, c in points}
        label = (ROW_LABELS[experiment] + (f" [{variant}]" if variant else "") + (f", {epochs} ep" if len(lengths) > 1 else "")
                 + (f" ({setting})" if len(settings) > 1 else ""))
        ax.errorbar([100 * mean(c.sparsities) for _, c in points], [100 * mean(c.accs) for _, c in points],
                    yerr=[100 * sample_std(c.accs) if len(c.accs) > 1 else 0.0 for _, c in points], linestyle=style,
                    marker=MARKERS[variants.index(variant) % len(MARKERS)], capsize=3, color=f"C{colour}",
                    markerfacecolor=f"C{colour}" if filled else "white", label=label)
    for ax, panel in zip(axes, panels):
        ax.set(title=ACCURACY_SPARSITY_PANELS[panel][0], xlabel="sparsity % (mean achieved)")
        ax.legend(fontsize=7, handlelength=3, loc="best")
    for row in grid:
        row[0].set_ylabel("test top-1 %")
    shown = {s[2] for s in series}
    absent = [ROW_LABELS[e] for _, experiments in ACCURACY_SPARSITY_PANELS for e in experiments if e not in shown]
    length = f", {lengths[0]} epochs" if len(lengths) == 1 else ""
    fig.suptitle(f"Accuracy against sparsity, {model_and_data(used)}{length} (mean ± std over {'/'.join(map(str, sorted(seeds)))} seeds; "
                 "dashed: baseline, dotted: + Sign-In, solid: + HAM)" + (f"\nno runs in the sources: {', '.join(absent)}" if absent else ""),
                 fontsize=9)
    return fig


def ham_grid(runs: list[R.Run]) -> Figure:
    """Dense runs over HAM's (α, β): each cell the mean ± std over its seeds, coloured by its
    difference to the runs without HAM in the sources (the reference); the colour scale spans at
    least twice the largest seed std, so differences inside the noise stay pale. A cell whose runs
    all diverged says ``diverged`` (``k/n diverged`` when some did), one whose runs failed otherwise or are
unfinished ``failed``, one without runs ``missing``."""
    dense = [r for r in runs if r.config and r.config.get("sparsity", {}).get("method") == "dense"]
    grid = [r for r in dense if r.config["ham"]["enabled"]]
    if not grid:
        raise SystemExit(f"no dense runs with HAM in the sources: {HAM_GRID_RUNS}")
    variants = split(grid, ignore=("ham.alpha", "ham.beta"))
    if len(variants) > 1:
        raise SystemExit(f"the dense + HAM runs differ in more than ham.alpha and ham.beta ({' | '.join(differing_labels(grid, ('ham.alpha', 'ham.beta')))}): a grid is one "
                         f"recipe; pass the sources of one of them")
    without = [r for r in dense if not r.config["ham"]["enabled"] and r.status == "finished"]
    recipe = experiment_config(grid[0])
    differ = sorted({k for r in without for k in differences(recipe, experiment_config(r), allowed=("ham",))})
    if differ:
        raise SystemExit(f"the dense runs without HAM differ from the grid's recipe in {', '.join(differ)}: the reference must be "
                         f"the same recipe without HAM ({HAM_GRID_RUNS})")
    reference = [100 * r.summary["test_acc"] for r in without]
    alphas = sorted({r.config["ham"]["alpha"] for r in grid})
    betas = sorted({r.config["ham"]["beta"] for r in grid})
    accs: dict[tuple[int, int], list[float]] = {}
    diverged: dict[tuple[int, int], int] = {}
    failed_otherwise: set[tuple[int, int]] = set()
    for r in grid:
        key = alphas.index(r.config["ham"]["alpha"]), betas.index(r.config["ham"]["beta"])
        if r.status == "finished":
            accs.setdefault(key, []).append(100 * r.summary["test_acc"])
        elif r.status == "failed" and "diverged" in r.error:
            diverged[key] = diverged.get(key, 0) + 1
        else:
            failed_otherwise.add(key)
    finished_values = sorted(v for vs in accs.values() for v in vs)
    if not finished_values:
        raise SystemExit(f"no finished dense runs with HAM in the sources: every cell diverged or failed ({HAM_GRID_RUNS})")
    centre = mean(reference) if reference else finished_values[len(finished_values) // 2]
    stds = [sample_std(v) for v in accs.values() if len(v) > 1] + ([sample_std(reference)] if len(reference) > 1 else [])
    spread = max([abs(mean(v) - centre) for v in accs.values()] + [2 * s for s in stds] + [1e-6])
    values = [[mean(accs[i, j]) - centre if (i, j) in accs else float("nan") for j in range(len(betas))] for i in range(len(alphas))]
    fig, ax = plt.subplots(figsize=(6.2, 4.8))
    image = ax.imshow(values, cmap="RdBu", norm=TwoSlopeNorm(0.0, -spread, spread), aspect="auto")
    for i in range(len(alphas)):
        for j in range(len(betas)):
            finished, failed = accs.get((i, j), []), diverged.get((i, j), 0)
            if not finished:
                text = "diverged" if failed else "failed" if (i, j) in failed_otherwise else "missing"
            else:
                text = f"{mean(finished):.2f}" + (f"\n± {sample_std(finished):.2f}" if len(finished) > 1 else "") + f"\n(n={len(finished)})"
                text += f"\n{failed}/{failed + len(finished)} diverged" if failed else ""
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    where = (f"without HAM {mean(reference):.2f}" + (f" ± {sample_std(reference):.2f}" if len(reference) > 1 else "") + f" (n={len(reference)})"
             if reference else "no runs without HAM in the sources: colours relative to the grid's median")
    ax.set(xlabel="ham.beta", ylabel="ham.alpha", title=f"Test top-1 % over HAM's (α, β), {model_and_data(grid)}\n{where}")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("difference to " + ("no HAM" if reference else "the median") + " (points)")
    return fig


def save(fig: Figure, output: Path) -> list[Path]:
    """The figure as PNG at ``output`` and as SVG beside it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = [output, output.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {paths[0]} and {paths[1]}")
    return paths


#: what the ham-grid figure needs, and how to make it
HAM_GRID_RUNS = ("dense runs with HAM over ham.alpha and ham.beta, one recipe, and the same recipe without HAM as the reference: "
                 "`python train.py -m +sweep=ham_grid` and `python train.py -m +sweep=ham_grid_baseline`")
#: figure -> (builder, the runs it takes)
FIGURES = {
    "sign-flips": (sign_flips, f"finished random, random_signin and random_ham runs at 90 % with their histories "
                               f"(`{SIGN_FLIPS_COMMAND.format(target=0.9)}`)"),
    "accuracy-sparsity": (accuracy_sparsity, f"finished runs of Table 4's experiments ({', '.join(ROW_LABELS)}) at any targets "
                                             f"(`{ACCURACY_SPARSITY_COMMAND}`)"),
    "ham-grid": (ham_grid, HAM_GRID_RUNS),
}


def main(argv: list[str] | None = None) -> None:
    epilog = "the runs each figure takes:\n" + "\n".join(f"  {name}: {takes}" for name, (_, takes) in FIGURES.items())
    parser = argparse.ArgumentParser(description=__doc__, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=sorted(FIGURES), help="which figure (the runs each takes: below)")
    parser.add_argument("sources", nargs="+", type=Path, help="records folders or run/sweep directories (what scripts/compare.py reads)")
    parser.add_argument("--output", type=Path, required=True, help="the PNG to write (an SVG of the same name goes beside it)")
    args = parser.parse_args(argv)
    if args.output.suffix.lower() != ".png":
        parser.error(f"--output {args.output} is not valid: name a .png file (the .svg goes beside it)")
    save(FIGURES[args.figure][0](R.from_disk(args.sources)), args.output)


if __name__ == "__main__":
    main()
