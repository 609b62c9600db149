"""The cost of a whole training step of ResNet-50 with HAM, with each sparse method, and with SAM.

Every variant is a real :class:`training.loop.Trainer` (synthetic data in memory) and is timed
through the trainer's own step (forward, backward, the method's hooks, the optimizer stack), in one
process, interleaved over repeats; the table gives each variant's median step time and its ratio
to the baseline measured beside it (SGD, dense, HAM off):

* ``ham``: HAM's step after SGD (``ham.fused=false``), ``ham_fused``: the compiled kernel;
* ``random``: in-place masking at 90 % (gradients masked before the step, weights and momentum
  zeroed after it); ``rigl``: the same plus RiGL's mask update, amortised over ΔT = 100 steps
  (a step with the update is timed separately); ``signin``: θ = m ⊙ w with masking;
* ``sam``: SAM (two forward/backward passes) against SGD.

    python benchmarks/train_step.py                      # CPU: batch 8 at 64 px, results/train_step.md
    python benchmarks/train_step.py --device cuda --batch 256 --res 176 --output results/train_step_gpu.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.config import compose_config  # noqa: E402
from training.config import validate  # noqa: E402
from training.presets import apply_preset  # noqa: E402
from training.loop import Trainer  # noqa: E402

VARIANTS = {
    "baseline": ["ham=disabled"],
    "ham": [],
    "ham_fused": ["ham.fused=true"],
    "random": ["ham=disabled", "sparsity=random"],
    "rigl": ["ham=disabled", "sparsity=rigl"],
    "signin": ["ham=disabled", "sparsity=random", "sparsity.sign_in=true"],
    "sam": ["ham=disabled", "optimizer=sam"],
}
DELTA_T = 100  # RiGL's ΔT (configs/sparsity/rigl.yaml)


def build(name: str, args: argparse.Namespace, root: Path) -> Trainer:
    overrides = [
        "model=resnet50", "data=synthetic", f"data.image_size={args.res}", "data.num_classes=1000",
        f"data.synthetic_train_size={args.batch * 400}", "data.synthetic_test_size=8", f"trainer.batch_size={args.batch}",
        "trainer.epochs=10", f"trainer.device={args.device}", "trainer.amp=true", "trainer.channels_last=true",
        "logger=disabled", "trainer.progress=false", "ham=imagenet", *VARIANTS[name],
    ]
    cfg = compose_config(overrides)
    apply_preset(cfg)
    validate(cfg)
    return Trainer(cfg, root / name)


def time_steps(trainer: Trainer, x: torch.Tensor, y: torch.Tensor, steps: int, step_index: int) -> float:
    """Seconds per step over ``steps`` steps, each at global step ``step_index`` (1: no RiGL update)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.global_step = step_index
        trainer._train_step(x, y)
    sync()
    return (time.perf_counter() - start) / steps


def regenerate(args: argparse.Namespace, device: torch.device) -> str:
    """The command that measures this table again (the non-default arguments only)."""
    parts = ["python benchmarks/train_step.py"]
    if device.type != "cpu":
        parts.append(f"--device {device.type}")
    for flag, default in (("batch", 8), ("res", 64), ("steps", 3), ("repeats", 7)):
        if getattr(args, flag) != default:
            parts.append(f"--{flag} {getattr(args, flag)}")
    if args.output.resolve() != (REPO / "results" / "train_step.md").resolve():
        parts.append(f"--output {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=REPO / "results" / "train_step.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: build(name, args, Path(tmp)) for name in VARIANTS}
        device = trainers["baseline"].env.device
        g = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch, 3, args.res, args.res, generator=g).to(device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (args.batch,), generator=g).to(device)
        times: dict[str, list[float]] = {name: [] for name in [*VARIANTS, "rigl_update"]}
        for name, trainer in trainers.items():  # warm-up (and compilation for ham_fused)
            time_steps(trainer, x, y, 2, 1)
        for _ in range(args.repeats):
            for name, trainer in trainers.items():
                times[name].append(time_steps(trainer, x, y, args.steps, 1))
            times["rigl_update"].append(time_steps(trainers["rigl"], x, y, 1, DELTA_T))
        for trainer in trainers.values():
            trainer.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    median["rigl"] = median["rigl"] + (median["rigl_update"] - median["rigl"]) / DELTA_T  # amortised over ΔT
    rows = [
        ("ham", "baseline", "HAM (per-tensor step on the CPU, flat step on an accelerator)", 3.0),
        ("ham_fused", "baseline", "HAM, compiled kernel (ham.fused=true)", 3.0),
        ("random", "baseline", "masking at 90 % (random)", 5.0),
        ("rigl", "baseline", f"RiGL: masking + mask update amortised over ΔT={DELTA_T}", 5.0),
        ("signin", "baseline", "Sign-In: θ = m ⊙ w + masking", 5.0),
        ("sam", "baseline", "SAM vs SGD (two passes)", None),
    ]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    lines = [
        "# The cost of a training step: HAM, the sparse methods, SAM", "",
        f"ResNet-50, batch {args.batch} at {args.res} px, bf16 autocast, channels_last, on {device.type} ({name}); torch {torch.__version__}.",
        f"Each variant is a `Trainer` timed through its own step; {args.repeats} interleaved repeats of {args.steps} steps;",
        "medians. Ratios are against the baseline (SGD, dense, HAM off) timed in the same process.",
        f"Regenerate with `{regenerate(args, device)}`.", "",
        f"Baseline step: {1000 * median['baseline']:.1f} ms (min {1000 * min(times['baseline']):.1f}, max {1000 * max(times['baseline']):.1f}).", "",
        "| variant | step ms | ratio to baseline | target | met |", "|---|---:|---:|---:|---|",
    ]
    for key, base, label, target in rows:
        ratio = median[key] / median[base]
        met = "–" if target is None else ("yes" if 100 * (ratio - 1) <= target else "no")
        lines.append(f"| {label} | {1000 * median[key]:.1f} | {ratio:.3f} | {'–' if target is None else f'≤ +{target:g} %'} | {met} |")
    lines += ["", f"RiGL's update step alone: {1000 * median['rigl_update']:.1f} ms (median)."]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
