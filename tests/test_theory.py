"""Paper §4: on underdetermined least squares, HAM converges to an interpolator that minimises
R_α, which behaves like ‖x‖₁ for large α: larger α gives sparser interpolating solutions."""

from __future__ import annotations

import torch

from ham import HAM


def _fit(alpha: float, lr: float, steps: int = 8000):
    """40 Gaussian equations, 100 unknowns, 5-sparse truth, small init (docs/methods.md §7)."""
    gen = torch.Generator().manual_seed(0)
    d, n = 40, 100
    Z = torch.randn(d, n, generator=gen, dtype=torch.float64)
    x_star = torch.zeros(n, 1, dtype=torch.float64)
    x_star[torch.randperm(n, generator=gen)[:5]] = torch.randn(5, 1, generator=gen, dtype=torch.float64)
    y = Z @ x_star
    x = torch.nn.Parameter(0.01 * torch.randn(n, 1, generator=gen, dtype=torch.float64) / n**0.5)
    opt = torch.optim.SGD([x], lr=lr)
    if alpha:
        opt = HAM(opt, alpha=alpha, beta=0.0, max_weight_norm=None)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 / d * (Z @ x - y).square().sum()).backward()
        opt.step()
    x = x.detach()
    residual = (torch.linalg.vector_norm(Z @ x - y) / torch.linalg.vector_norm(y)).item()
    return residual, x.abs().sum().item(), (x - x_star).norm().item()


def test_larger_alpha_gives_sparser_interpolating_solutions():
    res_gd, l1_gd, err_gd = _fit(0.0, lr=0.02)
    res_100, l1_100, _ = _fit(100.0, lr=0.02)
    res_500, l1_500, err_500 = _fit(500.0, lr=0.005)
    assert max(res_gd, res_100, res_500) < 1e-6  # all three interpolate
    assert l1_500 < l1_100 < 0.8 * l1_gd  # L1 norm falls as α grows
    assert err_500 < 0.5 * err_gd  # and HAM lands much closer to the sparse ground truth


def test_the_theory_script_short_version_orders_the_l1_norms(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "theory_experiment.py"
    spec = importlib.util.spec_from_file_location("theory_experiment", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    results = module.main(["--steps", "2000", "--seeds", "2", "--output", str(tmp_path / "t.md"), "--figure", str(tmp_path / "t.png")])
    l1 = {m: sum(r["l1"][-1] for r in runs) / len(runs) for m, runs in results.items()}
    assert l1["HAM α=200"] < l1["HAM α=50"] < l1["HAM α=10"] < l1["GD"]
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "t.png").stat().st_size > 10_000
    assert "| HAM α=200 |" in (tmp_path / "t.md").read_text()
