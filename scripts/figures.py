"""Figures from run records (PNG in ``results/figures/``), each made by one command:

    python scripts/figures.py sign-flips results/records/paper-small   # sign flips per epoch, random PaI at 90 %
    python scripts/figures.py accuracy-sparsity results/records/paper-small
    python scripts/figures.py ham-grid results/records/ham-grid        # HAM's (alpha, beta) grid as a heat map

Sources are records folders or run/sweep directories (anything ``scripts/compare.py`` reads); the
sign-flip figure needs the runs' histories (``history.jsonl``, or ``history`` in a record).
The theory experiment's figure is made by ``scripts/theory_experiment.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analysis import runs as R  # noqa: E402
from analysis.stats import mean, sample_std  # noqa: E402
from analysis.tables import cells, duplicates  # noqa: E402

FIGURES = REPO / "results" / "figures"


def _history(run: R.Run) -> list[dict]:
    if run.summary and "history" in run.summary:
        return run.summary["history"]
    path = Path(run.source) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sign_flips(runs: list[R.Run], output: Path, target: float = 0.9) -> Path:
    """Sign flips of the prunable weights per epoch (mean over seeds): random PaI, + Sign-In, + HAM."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    skip = {id(r) for r in duplicates(runs)}
    plotted = 0
    for experiment, label in (("random", "random PaI"), ("random_signin", "+ Sign-In"), ("random_ham", "+ HAM")):
        histories = [h for r in runs if r.status == "finished" and id(r) not in skip and r.experiment == experiment
                     and r.target == target and (h := _history(r))]
        if not histories:
            continue
        epochs = min(len(h) for h in histories)
        flips = [sum(h[e]["sign_flips"] for h in histories) / len(histories) for e in range(epochs)]
        ax.plot(range(1, epochs + 1), flips, marker="o", label=f"{label} (n={len(histories)})")
        plotted += 1
    if not plotted:
        raise SystemExit(f"no finished random/random_signin/random_ham runs at {target:g} with a history in the sources")
    ax.set(xlabel="epoch", ylabel="sign flips per epoch", yscale="log", title=f"Sign flips, random PaI at {100 * target:g} %")
    ax.legend()
    return _save(fig, output)


def accuracy_sparsity(runs: list[R.Run], output: Path) -> Path:
    """Test accuracy against target sparsity per method, with and without HAM (error bars: std over seeds)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    settings = sorted({r.setting for r in runs})
    for setting in settings:
        grouped = cells(runs, setting)
        for colour, method in enumerate(("random", "acdc", "rigl", "str")):
            for suffix, style in (("", "--"), ("_ham", "-")):  # one colour per method: dashed without HAM, solid with
                points = sorted((t, c) for (e, t, _), c in grouped.items() if e == method + suffix and t is not None and len(c.accs))
                if not points:
                    continue
                xs = [100 * t for t, _ in points]
                means = [100 * mean(c.accs) for _, c in points]
                stds = [100 * sample_std(c.accs) if len(c.accs) > 1 else 0.0 for _, c in points]
                ax.errorbar(xs, means, yerr=stds, linestyle=style, marker="o", capsize=3, color=f"C{colour}",
                            label=f"{method}{' + HAM' if suffix else ''}" + (f" ({setting})" if len(settings) > 1 else ""))
    if not ax.lines:
        raise SystemExit("no finished sparse runs of random, acdc, rigl or str in the sources")
    ax.set(xlabel="target sparsity %", ylabel="test top-1 %", title="Accuracy against sparsity (mean ± std over seeds)")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, output)


def ham_grid(runs: list[R.Run], output: Path) -> Path:
    """Test accuracy of dense runs over HAM's (alpha, beta), the mean over the finished seeds;
    cells where every seed diverged are marked."""
    grid = [r for r in runs if r.config.get("ham", {}).get("enabled")]
    alphas = sorted({r.config["ham"]["alpha"] for r in grid})
    betas = sorted({r.config["ham"]["beta"] for r in grid})
    if not alphas:
        raise SystemExit("no runs with HAM in the sources")
    accs: dict[tuple[int, int], list[float]] = {}
    for r in grid:
        key = alphas.index(r.config["ham"]["alpha"]), betas.index(r.config["ham"]["beta"])
        if r.status == "finished" and r.summary:
            accs.setdefault(key, []).append(100 * r.summary["test_acc"])
    values = [[mean(accs[i, j]) if (i, j) in accs else float("nan") for j in range(len(betas))]
              for i in range(len(alphas))]
    fig, ax = plt.subplots(figsize=(4.8, 4))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    for i in range(len(alphas)):
        for j in range(len(betas)):
            missing = values[i][j] != values[i][j]  # NaN: the run failed (diverged) or is absent
            ax.text(j, i, "diverged" if missing else f"{values[i][j]:.1f}", ha="center", va="center", fontsize=7,
                    color="black" if missing else "white")
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    seeds = max((len(v) for v in accs.values()), default=0)
    ax.set(xlabel="ham.beta", ylabel="ham.alpha", title=f"Test top-1 % over HAM's (α, β), mean of {seeds} seed(s)")
    fig.colorbar(image, ax=ax)
    return _save(fig, output)


def _save(fig, output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
    print(f"wrote {output}")
    return output


FIGURE_BUILDERS = {"sign-flips": sign_flips, "accuracy-sparsity": accuracy_sparsity, "ham-grid": ham_grid}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=sorted(FIGURE_BUILDERS))
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, help="the PNG (default: results/figures/<figure>.png)")
    args = parser.parse_args(argv)
    FIGURE_BUILDERS[args.figure](R.from_disk(args.sources), args.output or FIGURES / f"{args.figure}.png")


if __name__ == "__main__":
    main()
