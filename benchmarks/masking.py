"""How to keep pruned weights at zero: in-place masking after the step vs. a parametrization.

Times one training step (forward, backward, SGD + HAM step, masking) of LeNet-300-100 and of a
CIFAR-style ResNet-20 at 90 % sparsity on the CPU, in one process, interleaved, medians:
  * dense: no masking at all (the floor);
  * in place (our choice): gradients masked before the step, weights and momentum zeroed after it;
  * parametrize: ``torch.nn.utils.parametrize`` multiplies each weight by its mask in every forward.
Writes ``results/masking.md``.

    python benchmarks/masking.py [--repeats 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.nn.utils import parametrize

from ham import HAM
from training.config import ModelConfig, SparsityConfig
from training.methods import build_method
from training.models import build_model

RESULTS = Path(__file__).resolve().parent.parent / "results" / "masking.md"


class MaskProduct(torch.nn.Module):
    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


def _setup(model_name: str, variant: str, image: int, channels: int):
    torch.manual_seed(0)
    model = build_model(OmegaConf.structured(ModelConfig(name=model_name)), channels, image, 10)
    method = build_method(OmegaConf.structured(SparsityConfig(method="random" if variant == "inplace" else "dense", target=0.9)))
    method.prepare(model)
    if variant == "parametrize":
        reference = build_method(OmegaConf.structured(SparsityConfig(method="random", target=0.9)))
        reference.prepare(build_model(OmegaConf.structured(ModelConfig(name=model_name)), channels, image, 10))
        for layer, mask in zip(reference.layers, reference.masks):
            module = dict(model.named_modules())[layer.name]
            parametrize.register_parametrization(module, "weight", MaskProduct(mask.float()))
    opt = HAM(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4), alpha=20.0)
    method.attach(opt, 100, 10)
    x, y = torch.randn(128, channels, image, image), torch.randint(0, 10, (128,))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        method.before_step(1)
        opt.step()
        method.after_step(1)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = [
        "# Masking: in place vs. parametrize",
        "",
        f"Command: `python benchmarks/masking.py --repeats {args.repeats} --threads {args.threads}`",
        f"Machine: {platform.machine()}, {args.threads} threads, CPU; torch {torch.__version__}. One training step "
        "(batch 128, SGD + HAM) at 90 % sparsity; median of interleaved repeats.",
        "",
        "| model | dense ms | in place ms (ratio) | parametrize ms (ratio) |",
        "|---|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    for model_name, image, channels in (("lenet300_100", 28, 1), ("resnet20", 32, 3)):
        steps = {v: _setup(model_name, v, image, channels) for v in ("dense", "inplace", "parametrize")}
        times: dict[str, list[float]] = {v: [] for v in steps}
        for step in steps.values():
            step()
        for _ in range(args.repeats):
            for v, step in steps.items():
                start = time.perf_counter()
                step()
                times[v].append(time.perf_counter() - start)
        med = {v: statistics.median(t) * 1e3 for v, t in times.items()}
        verdicts.append(f"{model_name}: in place / parametrize = {med['inplace'] / med['parametrize']:.2f}")
        lines.append(
            f"| {model_name} | {med['dense']:.2f} | {med['inplace']:.2f} ({med['inplace'] / med['dense']:.2f}) "
            f"| {med['parametrize']:.2f} ({med['parametrize'] / med['dense']:.2f}) |"
        )
    lines += [
        "",
        "Measured ratio of the two: " + "; ".join(verdicts) + ".",
        "Where they cost about the same, the choice of `sparse/` (in place) rests on what the parametrization cannot",
        "give: RiGL's grow step needs the dense gradient at pruned positions, which a mask inside the forward",
        "zeroes by the chain rule; the optimizer, HAM and the checkpoints see plain weight tensors; and the",
        "mask composes with Sign-In's m ⊙ w parametrization without nesting two of them.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
