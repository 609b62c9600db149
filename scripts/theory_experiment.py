"""The paper's theory experiment: underdetermined least squares (docs/methods.md §7).

40 Gaussian samples z ~ N(0, I) of 100 unknowns, a 5-sparse ground truth x*, a small initialisation
x0 ~ N(0, I/√n)·0.01, gradient descent on ½‖Zx - y‖² with η = 1e-4 for 20,000 iterations, 5 seeds:

* GD: plain gradient descent (it converges to the interpolator nearest x0 in L2);
* GD + HAM, α in {10, 50, 200} (β = 0, the paper's ImageNet α included): ``ham.HAM`` around SGD;
* m ⊙ w: x = m ⊙ w with m² - w² = 1 at the start (PILoT's parameterisation, no penalty), GD on m and w.

Writes ``results/theory.md`` (final ‖x - x*‖₂, ‖x‖₁ and the residual, mean ± std over seeds, beside
‖x*‖₁) and ``results/figures/theory.png`` (both curves over the iterations).

    python scripts/theory_experiment.py [--steps 20000] [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ham import HAM  # noqa: E402
from sparse.reparam import hyperbolic_split  # noqa: E402

D, N, K, LR = 40, 100, 5, 1e-4
METHODS = ["GD", "HAM α=10", "HAM α=50", "HAM α=200", "m ⊙ w"]


def problem(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(D, N, generator=gen, dtype=torch.float64)
    x_star = torch.zeros(N, dtype=torch.float64)
    x_star[torch.randperm(N, generator=gen)[:K]] = torch.randn(K, generator=gen, dtype=torch.float64)
    x0 = 0.01 * torch.randn(N, generator=gen, dtype=torch.float64) / N**0.5
    return z, z @ x_star, x_star, x0


def run(method: str, seed: int, steps: int, recorded: set[int]) -> dict[str, list[float]]:
    z, y, x_star, x0 = problem(seed)
    if method == "m ⊙ w":
        m, w = (torch.nn.Parameter(t) for t in hyperbolic_split(x0.clone()))
        params, current = [m, w], lambda: m * w
    else:
        x = torch.nn.Parameter(x0.clone())
        params, current = [x], lambda: x
    opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=LR)
    if method.startswith("HAM"):
        opt = HAM(opt, alpha=float(method.split("=")[1]), beta=0.0, max_weight_norm=None, param_filter=lambda p: True)
    curves: dict[str, list[float]] = {"step": [], "error": [], "l1": [], "residual": []}
    for step in range(steps + 1):
        if step in recorded or step == steps:
            with torch.no_grad():
                xt = current()
                curves["step"].append(step)
                curves["error"].append(float((xt - x_star).norm()))
                curves["l1"].append(float(xt.abs().sum()))
                curves["residual"].append(float((z @ xt - y).norm() / y.norm()))
        if step == steps:
            break
        opt.zero_grad()
        (0.5 * (z @ current() - y).square().sum()).backward()
        opt.step()
    return curves


def mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
    return f"{mean:.4f} ± {std:.4f}"


def main(argv: list[str] | None = None) -> dict[str, list[dict[str, list[float]]]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "results" / "theory.md")
    parser.add_argument("--figure", type=Path, default=REPO / "results" / "figures" / "theory.png")
    args = parser.parse_args(argv)
    recorded = {0} | {round(args.steps ** (i / 150)) for i in range(151)}  # log-spaced: the curves are drawn on a log axis
    results = {m: [run(m, seed, args.steps, recorded) for seed in range(args.seeds)] for m in METHODS}
    truth = [float(problem(seed)[2].abs().sum()) for seed in range(args.seeds)]
    command = "python scripts/theory_experiment.py" + ("" if args.steps == 20_000 else f" --steps {args.steps}") + (
        "" if args.seeds == 5 else f" --seeds {args.seeds}")
    lines = [
        "# Underdetermined least squares: HAM's implicit bias towards sparse interpolators", "",
        f"40 Gaussian samples, 100 unknowns, a 5-sparse x*, x0 ~ 0.01·N(0, I/√n), GD with η = {LR:g} on ½‖Zx − y‖²,",
        f"{args.steps:,} iterations, {args.seeds} seeds (mean ± std). Regenerate with `{command}`.", "",
        f"‖x*‖₁ = {mean_std(truth)} (the ground truth's L1 norm).", "",
        "| method | ‖x − x*‖₂ | ‖x‖₁ | ‖Zx − y‖ / ‖y‖ |", "|---|---:|---:|---:|",
    ]
    for method, runs in results.items():
        lines.append(f"| {method} | {mean_std([r['error'][-1] for r in runs])} | {mean_std([r['l1'][-1] for r in runs])} | "
                     f"{mean_std([r['residual'][-1] for r in runs])} |")
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(results, args.figure)
    return results


def plot(results: dict[str, list[dict[str, list[float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, runs in results.items():
        steps = runs[0]["step"]
        for ax, key in zip(axes, ("error", "l1")):
            mean = [sum(r[key][i] for r in runs) / len(runs) for i in range(len(steps))]
            ax.plot([s + 1 for s in steps], mean, label=method)
    axes[0].set(xlabel="iteration + 1", ylabel="‖x − x*‖₂", xscale="log", yscale="log", title="distance to the sparse ground truth")
    axes[1].set(xlabel="iteration + 1", ylabel="‖x‖₁", xscale="log", title="L1 norm of the iterate")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
