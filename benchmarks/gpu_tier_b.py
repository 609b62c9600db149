"""Tier B of the GPU check: the trainer. ``train.py`` on ResNet-50 with ``data=synthetic`` (images
made in memory; no data set needed) and ``logger=disabled``, bf16 autocast and channels_last, a few
hundred steps: images/s after the first epoch and peak GPU memory; then the same under ``torchrun``
over every visible GPU (NCCL; with one GPU a world of one, said so), checking that the run reports
that world size.

The machine may lack Hydra and OmegaConf (a bare GPU machine has PyTorch, torchvision, numpy,
Pillow, timm, Lightning, opencv): then the wheels that ``scripts/gpu_wheels.sh`` put into
``--wheels`` are unpacked into a temporary folder that only these runs see (no network, no pip, no
build). W&B, submitit and FFCV are not needed (``logger=disabled``, no SLURM, no .beton).

    python benchmarks/gpu_tier_b.py [--device cuda] [--quick] [--wheels gpu_wheels]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: what train.py needs beyond torch here, as the wheels of scripts/gpu_wheels.sh name them
TRAINER_PACKAGES = ("hydra-core", "omegaconf", "PyYAML", "tqdm")
TRAINER_MODULES = ("hydra", "omegaconf", "yaml", "tqdm")


class TierFailed(RuntimeError):
    """A step of the tier failed; the message says which and why."""


def trainer_path(wheels: Path, folder: Path) -> str:
    """The ``PYTHONPATH`` under which train.py finds what it imports: the checkout, and the
    carried wheels installed into ``folder`` when this Python lacks any of :data:`TRAINER_MODULES`."""
    probe = subprocess.run([sys.executable, "-c", "import " + ", ".join(TRAINER_MODULES)], capture_output=True, text=True)
    if probe.returncode == 0:
        return str(REPO)
    if not wheels.is_dir():
        raise TierFailed(f"this Python lacks Hydra/OmegaConf ({probe.stderr.strip().splitlines()[-1]}) and there is no wheel folder "
                         f"{wheels}: run scripts/gpu_wheels.sh on a machine with a package registry and carry the folder along")
    found = sorted(wheels.glob("*.whl"))
    names = {w.name.split("-")[0].lower().replace("_", "-") for w in found}
    missing = [p for p in (*TRAINER_PACKAGES, "antlr4-python3-runtime", "packaging") if p.lower() not in names]
    if missing:
        raise TierFailed(f"{wheels} has no wheel of {', '.join(missing)}: run scripts/gpu_wheels.sh {wheels} again")
    for wheel in found:  # a wheel is a zip archive laid out as installed: these need no build step and no pip
        try:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(folder)
        except (zipfile.BadZipFile, OSError) as error:
            raise TierFailed(f"{wheel} cannot be unpacked ({error}): it is no wheel, or a damaged one; run scripts/gpu_wheels.sh "
                             f"{wheels} again") from None
    return f"{folder}{os.pathsep}{REPO}"


def train(python_path: str, run_dir: Path, overrides: list[str], launcher: list[str], timeout: float) -> list[dict]:
    """Run train.py (through ``launcher``, e.g. torchrun) and return its history."""
    env = dict(os.environ, PYTHONPATH=python_path, WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    command = [*launcher, str(REPO / "train.py"), f"hydra.run.dir={run_dir}", *overrides]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise TierFailed(f"{' '.join(command[:3])} ... exited {result.returncode}: {result.stderr.strip()[-1500:]}")
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="a small network and few steps (checks the code on a CPU)")
    parser.add_argument("--wheels", type=Path, default=REPO / "gpu_wheels", help="the folder scripts/gpu_wheels.sh wrote")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for each train.py run")
    args = parser.parse_args()
    import torch  # only to count the GPUs

    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 0
    if args.device.startswith("cuda") and not gpus:
        raise SystemExit("error: --device cuda, but no GPU is visible; use --device cpu --quick to check the code")
    if args.quick:
        model, res, batch, size, epochs = "cnn_small", 28, 64, 512, 3
    else:
        model, res, batch, size, epochs = "resnet50", 160, 256, 2560, 16  # 10 steps an epoch: 160 steps
    overrides = [f"model={model}", "data=synthetic", f"data.image_size={res}", "data.in_channels=3",
                 "data.num_classes=10", f"data.synthetic_train_size={size}", "data.synthetic_test_size=256",
                 f"trainer.batch_size={batch}", f"trainer.eval_batch_size={batch}", f"trainer.epochs={epochs}",
                 f"trainer.device={args.device}", "trainer.amp=true", "trainer.channels_last=true", "logger=disabled",
                 "trainer.progress=false", "schedule=constant", "optimizer.lr_reference_batch=null", "optimizer.lr=0.05",
                 "trainer.divergence_factor=1000"]  # throughput, not accuracy
    lines = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            python_path = trainer_path(args.wheels, Path(tmp) / "site")
            carried = "the carried wheels" if str(Path(tmp)) in python_path else "this Python's own packages"
            history = train(python_path, Path(tmp) / "run", overrides, [sys.executable], args.timeout)
            after_first = history[1:] or history
            ips = sum(h["images_per_s"] for h in after_first) / len(after_first)
            peak = max((h.get("peak_memory_gib", 0.0) for h in history), default=0.0)
            lines += [f"train.py (Hydra and OmegaConf from {carried}): {model}, `data=synthetic` at {res} px, batch {batch}, bf16 autocast, "
                      f"channels_last, {epochs} epochs of {size // batch} steps: {ips:,.0f} images/s (mean over the epochs after the first), training "
                      f"accuracy {100 * history[-1]['train_acc']:.1f} % in the last (chance: 10 %)"
                      + (f", peak GPU memory {peak:.2f} GiB." if gpus else "; no GPU memory on the CPU."), ""]
            world = max(gpus, 1)
            torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}"]
            ddp_dir = Path(tmp) / "ddp"
            two_epochs = [o for o in overrides if not o.startswith("trainer.epochs=")] + ["trainer.epochs=2"]
            ddp_history = train(python_path, ddp_dir, two_epochs, torchrun, args.timeout)
            summary = json.loads((ddp_dir / "summary.json").read_text())
            if summary["world_size"] != world:
                raise TierFailed(f"torchrun with {world} process(es) ran a world of {summary['world_size']}")
            backend = "NCCL" if gpus else "gloo"
            alone = f", {'one GPU' if gpus == 1 else 'no GPU'}: a world of one, no gradient is exchanged" if world == 1 else ""
            lines += [f"torchrun over {world} process(es) ({backend}{alone}): "
                      f"{len(ddp_history)} epochs, {ddp_history[-1]['images_per_s']:,.0f} images/s in the last, world size in summary.json: "
                      f"{summary['world_size']}.", ""]
    except (TierFailed, subprocess.TimeoutExpired) as error:
        print("\n".join(lines + [f"FAILED: {error}"]))
        raise SystemExit(1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
