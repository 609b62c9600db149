"""Tier C of the GPU check: FFCV (run only where ``import ffcv`` works; benchmarks/gpu_check.py says
why it was skipped otherwise). Writes a small ImageFolder of JPEGs (each class its own colour plus
noise) and its ``.beton`` files with scripts/write_ffcv.py, then trains ResNet-50 (``--quick``:
ResNet-20) with HAM through FFCV (``train.py +experiment=dense_ham``, bf16 autocast, channels_last): images/s after the first
epoch and peak GPU memory.

    python benchmarks/gpu_tier_c.py [--device cuda] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


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


def run(command: list[str], timeout: float) -> None:
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths += [str(REPO)] * (str(REPO) not in paths)
    env = dict(os.environ, WANDB_MODE="disabled", HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(paths))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        print(f"FAILED: {' '.join(command[:3])} ... exited {result.returncode}: {result.stderr.strip()[-1500:]}")
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks the code on a CPU)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for each step")
    args = parser.parse_args()
    per_class, batch, epochs, res, stored = (16, 16, 2, 64, 80) if args.quick else (260, 256, 12, 176, 256)
    model = "resnet20" if args.quick else "resnet50"  # --quick checks the glue: a small network
    with tempfile.TemporaryDirectory() as tmp:
        images, beton, run_dir = Path(tmp) / "images", Path(tmp) / "beton", Path(tmp) / "run"
        make_images(images, per_class, 10, stored)
        run([sys.executable, str(REPO / "scripts" / "write_ffcv.py"), str(images), str(beton)], args.timeout)
        run([sys.executable, str(REPO / "train.py"), "+experiment=dense_ham", f"model={model}", f"hydra.run.dir={run_dir}", f"data.root={beton}",
             "data.num_classes=null", f"trainer.batch_size={batch}", f"trainer.eval_batch_size={batch}", f"trainer.epochs={epochs}",
             f"trainer.device={args.device}", "logger=disabled", "trainer.progress=false", f"data.min_res={res}", f"data.max_res={res}",
             f"data.val_res={64 if args.quick else 224}", "optimizer.lr_reference_batch=null", "optimizer.lr=0.01",
             "trainer.divergence_factor=1000"], args.timeout)  # throughput, not accuracy
        history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    after_first = history[1:] or history
    ips = sum(h["images_per_s"] for h in after_first) / len(after_first)
    peak = max((h.get("peak_memory_gib", 0.0) for h in history), default=0.0)
    print(f"FFCV + {model} + HAM (train.py): {len(history)} epochs of {per_class * 10 // batch} steps, batch {batch} at {res} px, bf16, "
          f"channels_last: {ips:,.0f} images/s (mean over the epochs after the first)"
          + (f", peak GPU memory {peak:.2f} GiB." if peak else "; no GPU memory on the CPU.") + "\n")


if __name__ == "__main__":
    main()
