"""The GPU checks, in one go (``scripts/gpu_check.sh`` runs this; about 5 minutes on one GPU).

1. Writes a small ImageFolder of random JPEGs and its ``.beton`` files (scripts/write_ffcv.py).
2. Trains ResNet-50 with HAM for a few hundred steps through FFCV (bf16 autocast, channels_last,
   ``train.py +experiment=dense_ham``): images/s after the first epoch and the peak GPU memory.
3. Times a whole training step with HAM on vs off, with ``ham.fused=true``, with RiGL's mask update
   (amortised) and SAM (benchmarks/train_step.py, interleaved, medians).
4. With more than one GPU: NCCL DDP over all of them (tests/ddp_worker.py) and whether every rank
   ends with identical parameters.

Writes a markdown report (default ``results/gpu_check.md``). ``--device cpu --quick`` runs the same
steps tiny on the CPU, to check the script itself where there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(command), flush=True)
    env = dict(os.environ, WANDB_MODE=os.environ.get("WANDB_MODE", "disabled"), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def make_images(root: Path, per_class: int, classes: int, size: int) -> None:
    """A learnable task (each class its own colour, plus noise), so that training leaves chance."""
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 216, (classes, 3))
    for split, n in (("train", per_class), ("val", max(1, per_class // 5))):
        for c in range(classes):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = np.clip(colours[c] + rng.integers(-40, 41, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (to check the script on a CPU)")
    parser.add_argument("--output", type=Path, default=REPO / "results" / "gpu_check.md")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no GPU visible (torch.cuda.is_available() is False): run with --device cpu --quick to check the script")
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    per_class, batch, epochs, steps, res = (20, 16, 2, 1, 64) if args.quick else (260, 256, 22, 10, 176)
    python = sys.executable
    lines = ["# GPU check", "", f"`python benchmarks/gpu_check.py{' --device ' + args.device if args.device != 'cuda' else ''}"
             f"{' --quick' if args.quick else ''}` on {torch.cuda.get_device_name(0) if gpus else args.device} "
             f"({gpus} GPU(s)), torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        images, beton = Path(tmp) / "images", Path(tmp) / "beton"
        make_images(images, per_class, 10, 256)
        run([python, "scripts/write_ffcv.py", str(images), str(beton)])
        common = [f"data.root={beton}", "data.num_classes=null", f"trainer.batch_size={batch}", f"trainer.eval_batch_size={batch}",
                  f"trainer.epochs={epochs}", f"trainer.device={args.device}", "logger=disabled", "trainer.progress=false",
                  f"data.min_res={res}", f"data.max_res={res}", "data.val_res=224" if not args.quick else "data.val_res=64",
                  "optimizer.lr_reference_batch=null", "optimizer.lr=0.01", "trainer.divergence_factor=1000"]  # throughput, not accuracy
        run_dir = Path(tmp) / "run"
        run([python, "train.py", "+experiment=dense_ham", f"hydra.run.dir={run_dir}", *common], timeout=1800)
        history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
        after_first = history[1:] or history
        ips = sum(h["images_per_s"] for h in after_first) / len(after_first)
        peak = max((h.get("peak_memory_gib", 0.0) for h in history), default=0.0)
        lines += [
            "## FFCV + ResNet-50 + HAM (train.py)", "",
            f"{len(history)} epochs of {per_class * 10 // batch} steps, batch {batch} at {res} px, bf16, channels_last:",
            f"{ips:,.0f} images/s per {'GPU' if gpus else 'process'} (mean over the epochs after the first), "
            + (f"peak GPU memory {peak:.2f} GiB." if gpus else "no GPU memory to report on the CPU."), "",
        ]
        bench = Path(tmp) / "train_step.md"
        run([python, "benchmarks/train_step.py", "--device", args.device, "--batch", str(batch), "--res", str(res),
             "--steps", str(steps), "--repeats", "1" if args.quick else "5", "--output", str(bench)], timeout=1800)
        lines += ["## Step cost", "", *bench.read_text().splitlines()[2:], ""]
        if gpus > 1:
            ddp_dir = Path(tmp) / "ddp"
            ddp_dir.mkdir()
            run([python, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", "tests/ddp_worker.py", str(ddp_dir),
                 "+experiment=rigl_ham", *[c for c in common if not c.startswith("trainer.epochs")], "trainer.epochs=2"], timeout=1800)
            states = [torch.load(ddp_dir / f"rank{r}.pt", map_location="cpu") for r in range(gpus)]
            same = all(torch.equal(states[0][k], s[k]) for s in states[1:] for k in states[0])
            lines += ["## NCCL DDP", "", f"{gpus} ranks, RiGL + HAM, 2 epochs: parameters and buffers identical on every rank: "
                      f"{'yes' if same else 'NO'}.", ""]
        else:
            lines += ["## NCCL DDP", "", f"Not run: {gpus} GPU(s) visible (it needs two or more).", ""]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
