"""Cost of HAM's hyperbolic step on torchvision ResNet-50's parameter shapes (25.6 M, fp32).

Times, in one process and interleaved round-robin, one optimizer step of
  * SGD (momentum 0.9, weight decay 1e-4, foreach) alone: the baseline;
  * SGD + HAM (eager, this repository's default);
  * SGD + HAM (``fused=True``: the hyperbolic step compiled by ``torch.compile``);
  * SGD + a per-parameter Python loop doing what the authors' published wrapper does (a clone of
    each weight, boolean-mask indexing, ``isnan().any()`` host checks): "today's" cost.
Reports medians over repeats and the ratios to plain SGD, and writes ``results/benchmarks.md``.

    python benchmarks/ham_step.py [--repeats 15] [--threads 2] [--no-fused]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision

from ham import HAM

RESULTS = Path(__file__).resolve().parent.parent / "results" / "benchmarks.md"


class ReferenceLoopHAM:
    """The per-parameter loop of the authors' wrapper (docs/methods.md §1), kept only as a baseline."""

    def __init__(self, optimizer, alpha=200.0, beta=1e-3, clamp=5.0, max_norm=1000.0):
        self.optimizer, self.alpha, self.beta, self.clamp, self.max_norm = optimizer, alpha, beta, clamp, max_norm

    @torch.no_grad()
    def step(self):
        self.optimizer.step()
        for group in self.optimizer.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None or p.ndim < 2:
                    continue
                old = p.data.clone()
                if torch.isnan(p.grad).any():
                    continue
                nonzero = p.data != 0
                w, g = p.data[nonzero], p.grad[nonzero]
                exponent = (-lr * (self.alpha * torch.sign(w) * g + self.beta)).clamp(-self.clamp, self.clamp)
                p.data[nonzero] = w * torch.exp(exponent)
                if torch.isnan(p.data).any():
                    p.data.copy_(old)
                norm = p.data.norm()
                if norm > self.max_norm:
                    p.data.mul_(self.max_norm / norm)


def _params():
    model = torchvision.models.resnet50()
    params = [p for p in model.parameters()]
    gen = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = 1e-3 * torch.randn(p.shape, generator=gen)
    return params


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4, foreach=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-fused", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    variants = {
        "SGD": _sgd(_params()),
        "SGD + HAM (eager)": HAM(_sgd(_params())),
        "SGD + per-parameter reference loop": ReferenceLoopHAM(_sgd(_params())),
    }
    if not args.no_fused:
        variants["SGD + HAM (fused=True, torch.compile)"] = HAM(_sgd(_params()), fused=True)
    n_params = sum(p.numel() for p in variants["SGD"].param_groups[0]["params"])

    compile_s = None
    for name, opt in variants.items():  # warm-up (and compilation)
        start = time.perf_counter()
        opt.step()
        opt.step()
        if "fused" in name:
            compile_s = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, opt in variants.items():
            start = time.perf_counter()
            opt.step()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}

    sgd_state = sum(t.numel() * t.element_size() for s in variants["SGD"].state.values() for t in s.values() if torch.is_tensor(t))
    ham = variants["SGD + HAM (eager)"]
    ham_state = sum(t.numel() * t.element_size() for s in ham.state.values() for t in s.values() if torch.is_tensor(t))
    workspace = sum(t.numel() * t.element_size() for t in ham._workspace.values())

    lines = [
        "# HAM step benchmark",
        "",
        f"Command: `python benchmarks/ham_step.py --repeats {args.repeats} --threads {args.threads}"
        + (" --no-fused`" if args.no_fused else "`"),
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} threads, CPU; "
        f"torch {torch.__version__}; CPU capability {torch.backends.cpu.get_cpu_capability()}",
        f"Parameters: torchvision ResNet-50, {n_params / 1e6:.1f} M fp32 ({len(variants['SGD'].param_groups[0]['params'])} tensors); "
        f"median of {args.repeats} interleaved repeats of one `step()`.",
        "",
        "| variant | median ms / step | ratio to SGD |",
        "|---|---:|---:|",
    ]
    for name, m in medians.items():
        lines.append(f"| {name} | {m * 1e3:.1f} | {m / medians['SGD']:.2f} |")
    ref = medians["SGD + per-parameter reference loop"]
    lines += [
        "",
        f"Speed-up of SGD + HAM (eager) over the per-parameter reference: {ref / medians['SGD + HAM (eager)']:.2f}x.",
        f"Optimizer state: SGD {sgd_state / n_params:.1f} bytes/parameter, SGD + HAM {ham_state / n_params:.1f} "
        f"bytes/parameter (HAM adds {(ham_state - sgd_state) / n_params:.1f}); HAM's one reusable CPU work buffer: "
        f"{workspace / 2**20:.1f} MiB, independent of the model size.",
    ]
    if compile_s is not None:
        lines.append(f"First two fused steps (compilation included): {compile_s:.1f} s.")
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)


if __name__ == "__main__":
    main()
