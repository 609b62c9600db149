"""Tier A of the GPU check: torch only (HAM, SAM and RiGL from this repository, torch, torchvision;
nothing else is imported, so it runs on a bare GPU machine).

1. **Exactness.** One SGD + HAM step of each path (``default``: on an accelerator the flat step, a
   few kernels per group; on the CPU the chunked per-tensor step; ``fused``: ``fused=True``, one
   compiled kernel per group) against a float64 reference of the hyperbolic step written out here,
   applied to plain SGD's step: the largest relative error, exact zeros kept, an entry with a
   non-finite gradient left as the base step left it, a non-finite weight left as it was.
2. **Step cost.** SGD + HAM against SGD alone on ResNet-50's parameter shapes, eager and fused, fp32
   and bf16 parameters: the median over repeats of the ratio, timed with CUDA events on a GPU.
3. **Compiled step.** ``torch.compile`` of an SGD + HAM step with a tensor learning rate under an LR
   scheduler: no graph compiled after the two warm-up steps, though the learning rate changes.
4. **Training step.** torchvision's ResNet-50, bf16 autocast, channels_last: a training step with
   SGD, with SGD + HAM, with RiGL's mask update amortised over its period, with SAM + HAM; median
   time per step relative to SGD, and peak GPU memory of each.

Ratios go into the report, not absolute claims. ``--quick`` shrinks every size (to check the code on
a CPU). Prints one JSON object (``--json``) or markdown.

    python benchmarks/gpu_tier_a.py [--device cuda] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

try:  # an installed checkout (pip install .) names the add-ons ham_sparse.*; a bare checkout ham, sparse
    from ham_sparse.ham import HAM, SAM
    from ham_sparse.sparse import RigL
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ham import HAM, SAM
    from sparse import RigL

LR, MOMENTUM, ALPHA, BETA, CLAMP, MAX_NORM = 0.1, 0.9, 200.0, 1e-3, 5.0, 1000.0


# -- 1. exactness ------------------------------------------------------------------------------
def reference_factor(stepped: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """HAM's hyperbolic step on the base step's result ``stepped``, in float64, written from the
    update rule: ``stepped ⊙ exp(clamp(-lr(α sign(stepped) g + β), -c, c))``, factor 1 where the
    gradient or the weight is not finite, then the norm limit (not for a non-finite norm)."""
    w, g = stepped.double(), grad.double()
    finite = torch.isfinite(g) & torch.isfinite(w)
    exponent = (-LR * (ALPHA * torch.sign(w) * torch.where(finite, g, 0.0) + BETA)).clamp(-CLAMP, CLAMP)
    out = torch.where(finite, w * torch.exp(exponent), w)
    norm = out.norm()
    return out * (MAX_NORM / norm) if torch.isfinite(norm) and norm > MAX_NORM else out


def exactness(device: torch.device, fused: bool) -> dict[str, Any]:
    """One step of SGD + HAM on a tensor with zeros (whose gradient is 0, so the base step keeps
    them), a non-finite gradient entry and, in a second tensor, a non-finite weight; against
    :func:`reference_factor` applied to plain SGD's step of the same tensors (so that only HAM's
    own rounding is measured)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(256, 129, generator=gen) * 0.05
    g = torch.randn(256, 129, generator=gen) * 0.5
    w[0, :7], g[0, :7] = 0.0, 0.0
    g[3, 5], g[4, 6] = float("nan"), float("inf")
    bad_w = torch.randn(64, 33, generator=gen)
    bad_w[1, 1] = float("inf")
    bad_g = torch.randn(64, 33, generator=gen)

    def stepped(with_ham: bool) -> list[torch.Tensor]:
        params = [torch.nn.Parameter(t.clone().to(device)) for t in (w, bad_w)]
        for p, grad in zip(params, (g, bad_g)):
            p.grad = grad.to(device)
        sgd = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
        (HAM(sgd, alpha=ALPHA, beta=BETA, clamp=CLAMP, max_weight_norm=MAX_NORM, fused=fused) if with_ham else sgd).step()
        return [p.detach().double().cpu() for p in params]

    got, base = stepped(True), stepped(False)
    want = reference_factor(base[0], g)
    finite = torch.isfinite(want)
    relative = ((got[0] - want).abs() / want.abs())[finite & (want != 0)].max().item()
    checks = {
        "zeros_kept": bool((got[0][0, :7] == 0).all()),
        "non_finite_gradient_left_as_sgd": bool(torch.equal(torch.isfinite(got[0]), finite)),
        "non_finite_weight_kept": bool(torch.isinf(got[1][1, 1])),
    }
    return {"max_relative_error": relative, **checks, "ok": relative < 1e-5 and all(checks.values())}


# -- timing --------------------------------------------------------------------------------------
def timed(device: torch.device, fn: Callable[[], Any]) -> float:
    """Seconds of one call: CUDA events on a GPU (no host sync inside the timed region), else wall time."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def interleaved_medians(device: torch.device, steps: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each step, the steps run round-robin so that drift hits them alike."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            times[name].append(timed(device, fn))
    return {name: statistics.median(values) for name, values in times.items()}


def resnet50_shapes(quick: bool) -> list[torch.Size]:
    import torchvision

    model = torchvision.models.resnet50(num_classes=10 if quick else 1000)
    shapes = [p.shape for p in model.parameters()]
    return shapes[:12] if quick else shapes


def step_cost(device: torch.device, quick: bool, repeats: int) -> list[dict[str, Any]]:
    """SGD + HAM (eager and fused) over SGD alone on ResNet-50's parameter shapes, fp32 and bf16."""
    rows = []
    shapes = resnet50_shapes(quick)
    for dtype in (torch.float32, torch.bfloat16):
        gen = torch.Generator().manual_seed(1)

        def params() -> list[torch.nn.Parameter]:
            made = [torch.nn.Parameter((torch.randn(s, generator=gen) * 0.02).to(device, dtype)) for s in shapes]
            for p in made:
                p.grad = (torch.randn(p.shape, generator=gen) * 0.01).to(device, dtype)
            return made

        sgd = torch.optim.SGD(params(), lr=LR, momentum=MOMENTUM, weight_decay=1e-4)
        steps = {"SGD": sgd.step}
        for fused in (False, True):
            if fused and device.type == "cpu" and quick:
                continue  # a compiled C++ kernel per shape: minutes on a small CPU, not what --quick checks
            ham = HAM(torch.optim.SGD(params(), lr=LR, momentum=MOMENTUM, weight_decay=1e-4), alpha=ALPHA, beta=BETA, fused=fused)
            steps["SGD + HAM fused" if fused else "SGD + HAM"] = ham.step
        medians = interleaved_medians(device, steps, repeats)
        for name, seconds in medians.items():
            if name != "SGD":
                rows.append({"dtype": str(dtype).removeprefix("torch."), "step": name, "ratio_to_sgd": seconds / medians["SGD"]})
    return rows


# -- 3. compiled step ----------------------------------------------------------------------------
def compiled_graphs(device: torch.device, steps: int = 6, warm_up: int = 2) -> dict[str, Any]:
    """Graphs ``torch.compile`` makes for an SGD + HAM step with a tensor lr under a StepLR that
    changes it every step (PyTorch's recipe): after the warm-up steps (the first creates the
    momentum buffers) none may be made, whatever the learning rate."""
    graphs = 0

    def counting_backend(graph_module, example_inputs):  # the eager backend, counting the graphs it is handed
        nonlocal graphs
        graphs += 1
        return graph_module.forward

    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).to(device)
    optimizer = HAM(torch.optim.SGD(model.parameters(), lr=torch.tensor(LR), momentum=MOMENTUM), alpha=ALPHA, beta=BETA)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)
    step = torch.compile(optimizer.step, backend=counting_backend)
    x, y = torch.randn(8, 16, device=device), torch.randint(0, 4, (8,), device=device)
    lrs, after_warm_up = [], 0
    for number in range(steps):
        torch.nn.functional.cross_entropy(model(x), y).backward()
        step()
        optimizer.zero_grad()
        scheduler.step()
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        after_warm_up = graphs if number + 1 == warm_up else after_warm_up
    new = graphs - after_warm_up
    return {"graphs": graphs, "after_warm_up": new, "steps": steps, "warm_up": warm_up, "lr_changed": len(set(lrs)) == steps,
            "ok": new == 0 and len(set(lrs)) == steps}


# -- 4. training step ----------------------------------------------------------------------------
def training_steps(device: torch.device, quick: bool, repeats: int) -> list[dict[str, Any]]:
    """A ResNet-50 training step (bf16 autocast, channels_last) with SGD, SGD + HAM, SGD + HAM with
    RiGL's update amortised over ``delta_t`` steps, SAM + HAM: median seconds relative to SGD and
    peak GPU memory."""
    import torchvision

    batch, res, classes = (2, 32, 10) if quick else (128, 176, 1000)
    delta_t = 4 if quick else 100
    x = torch.randn(batch, 3, res, res, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=device)

    def setup(kind: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = torchvision.models.resnet50(num_classes=classes).to(device, memory_format=torch.channels_last)
        method = None
        if kind.startswith("RiGL"):
            method = RigL(target=0.9, delta_t=delta_t, t_end=1.0)
            method.prepare(model)
        base = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=5e-5)
        optimizer: torch.optim.Optimizer = base
        if "SAM" in kind:
            optimizer = HAM(SAM(base, rho=0.05), alpha=ALPHA, beta=BETA)
        elif "HAM" in kind:
            optimizer = HAM(base, alpha=ALPHA, beta=BETA)
        if method is not None:
            method.attach(optimizer, steps_per_epoch=10 ** 6, epochs=1)
        counter = [0]

        def loss() -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return torch.nn.functional.cross_entropy(model(x).float(), y)

        def step() -> None:
            if "SAM" in kind:
                loss().backward()
                optimizer.first_step(zero_grad=True)  # type: ignore[attr-defined]
                loss().backward()
                optimizer.second_step(zero_grad=True)  # type: ignore[attr-defined]
                return
            loss().backward()
            if method is not None:
                method.before_step(counter[0])  # the update runs every delta_t-th call: timed amortised below
            optimizer.step()
            if method is not None:
                method.after_step(counter[0])
            counter[0] += 1
            optimizer.zero_grad(set_to_none=True)

        return step

    kinds = ["SGD", "SGD + HAM", "RiGL + SGD + HAM", "SAM + HAM"]
    rows = []
    baseline = None
    for kind in kinds:
        step = setup(kind)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        calls = delta_t if kind.startswith("RiGL") else 1  # one call per sample for the others; ΔT (one update) for RiGL

        def many() -> None:
            for _ in range(calls):
                step()

        seconds = interleaved_medians(device, {kind: many}, repeats, warmup=1)[kind] / calls
        baseline = seconds if kind == "SGD" else baseline
        peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None
        rows.append({"step": kind, "ratio_to_sgd": seconds / baseline, "peak_memory_gib": peak})
    return rows


def run(device: torch.device, quick: bool) -> dict[str, Any]:
    repeats = 3 if quick else 15
    report: dict[str, Any] = {"device": str(device), "quick": quick, "torch": torch.__version__}
    report["exactness"] = {"default": exactness(device, fused=False)}
    if not (quick and device.type == "cpu"):
        report["exactness"]["fused"] = exactness(device, fused=True)
    report["step_cost"] = step_cost(device, quick, repeats)
    report["compiled"] = compiled_graphs(device)
    report["training_step"] = training_steps(device, quick, 2 if quick else 5)
    report["ok"] = all(check["ok"] for check in report["exactness"].values()) and report["compiled"]["ok"]
    report["imported"] = sorted({name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names) - {"__main__"})
    report["ham_from"] = str(Path(sys.modules[HAM.__module__].__file__).parent)
    return report


def markdown(report: dict[str, Any]) -> str:
    """The tier's section of results/gpu_check.md."""
    path = "flat (a few kernels per group)" if report["device"].startswith("cuda") else "chunked per tensor"
    lines = [f"Imported besides the standard library: {', '.join(report['imported'])} (HAM from {report['ham_from']}).", "",
             "| step path | max relative error vs float64 | zeros kept | non-finite gradient: SGD's value | non-finite weight kept |",
             "|---|---:|---|---|---|"]
    for name, check in report["exactness"].items():
        label = f"default: {path}" if name == "default" else "fused (compiled kernel)"
        lines.append(f"| {label} | {check['max_relative_error']:.1e} | {check['zeros_kept']} | {check['non_finite_gradient_left_as_sgd']} | "
                     f"{check['non_finite_weight_kept']} |")
    lines += ["", "| parameters | step | median time / SGD's |", "|---|---|---:|"]
    lines += [f"| {row['dtype']} | {row['step']} | {row['ratio_to_sgd']:.2f} |" for row in report["step_cost"]]
    compiled = report["compiled"]
    lines += ["", f"Compiled SGD + HAM step under StepLR (tensor lr, changed every step): {compiled['graphs']} graph(s) in the "
              f"first {compiled['warm_up']} steps, {compiled['after_warm_up']} in the {compiled['steps'] - compiled['warm_up']} after them "
              f"(0 expected).", "",
              "| ResNet-50 training step (bf16 autocast, channels_last) | median time / SGD's | peak GPU memory GiB |", "|---|---:|---:|"]
    for row in report["training_step"]:
        peak = "–" if row["peak_memory_gib"] is None else f"{row['peak_memory_gib']:.2f}"
        lines.append(f"| {row['step']} | {row['ratio_to_sgd']:.2f} | {peak} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (checks the code; numbers mean little)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object instead of markdown")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch.cuda.is_available() is False; use --device cpu --quick to check the code")
    report = run(torch.device(args.device), args.quick)
    print(json.dumps(report) if args.json else markdown(report))
    raise SystemExit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
