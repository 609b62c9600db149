"""The GPU check in one command, bounded (``scripts/gpu_check.sh`` runs this): three tiers, each in
its own process with its own time budget; a tier that fails or runs out of time is reported and the
next one runs. About 10 minutes at most on one GPU.

* **A, torch only** (benchmarks/gpu_tier_a.py): HAM's steps against a float64 reference, HAM's step
  cost against SGD's, a compiled step under an LR schedule, ResNet-50 training steps (HAM, RiGL,
  SAM) with peak memory. Needs nothing but PyTorch and torchvision.
* **B, the trainer** (benchmarks/gpu_tier_b.py): train.py on ResNet-50 with synthetic data, then
  under torchrun over every visible GPU; Hydra and OmegaConf from the carried wheels
  (scripts/gpu_wheels.sh) where the machine lacks them.
* **C, FFCV** (benchmarks/gpu_tier_c.py): only where ``import ffcv`` works; otherwise reported as
  skipped, with the reason.

Writes ``results/gpu_check.md`` (``--output``) with the machine (GPU, driver, torch, CUDA, Python)
and exits 0 when tiers A and B passed. ``--device cpu --quick`` runs everything tiny on the CPU.

    python benchmarks/gpu_check.py [--device cuda] [--quick] [--wheels gpu_wheels] [--output results/gpu_check.md]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Tier:
    name: str
    title: str
    script: str
    budget_s: int  # on a GPU; --quick on a CPU gets the same budgets
    required: bool  # the check passes only if this tier did


TIERS = (
    Tier("A", "torch only", "gpu_tier_a.py", 200, True),
    Tier("B", "the trainer", "gpu_tier_b.py", 240, True),
    Tier("C", "FFCV", "gpu_tier_c.py", 120, False),
)


def machine(device: str) -> list[str]:
    """What the report says about the machine: GPU model and count, driver, torch, CUDA, Python."""
    import torch

    lines = [f"- Python {platform.python_version()} on {platform.machine()}, torch {torch.__version__} (CUDA {torch.version.cuda})"]
    if device.startswith("cuda") and torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        lines.append(f"- {torch.cuda.device_count()} GPU(s): {', '.join(names)}")
        smi = shutil.which("nvidia-smi")
        if smi:
            driver = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True)
            lines.append(f"- driver {driver.stdout.strip().splitlines()[0] if driver.returncode == 0 and driver.stdout.strip() else 'unknown'}")
    else:
        lines.append(f"- device {device} (no GPU used)")
    return lines


def ffcv_missing() -> str | None:
    """Why FFCV cannot be used here (None when ``import ffcv`` works)."""
    probe = subprocess.run([sys.executable, "-c", "import ffcv.loader, ffcv.writer"], capture_output=True, text=True)
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["import ffcv failed"])[-1]


def run_tier(tier: Tier, arguments: list[str]) -> tuple[str, str, float]:
    """(status, the tier's report, seconds): passed, FAILED (its exit code) or TIMED OUT."""
    start = time.monotonic()
    command = [sys.executable, str(REPO / "benchmarks" / tier.script), *arguments]
    print(f"== tier {tier.name} ({tier.title}): {' '.join(command[1:])}, at most {tier.budget_s} s", flush=True)
    try:
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=tier.budget_s)
    except subprocess.TimeoutExpired as expired:
        partial = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        return "TIMED OUT", partial + f"\nStopped after its budget of {tier.budget_s} s.", time.monotonic() - start
    text = result.stdout.strip()
    if result.returncode != 0:
        text += "\n\n" + "\n".join(result.stderr.strip().splitlines()[-15:])
    return ("passed" if result.returncode == 0 else f"FAILED (exit code {result.returncode})"), text, time.monotonic() - start


def check_arguments(tiers: str, output: Path) -> str | None:
    """Why the check cannot run as asked (before any tier runs), or None: ``--tiers`` names only
    tiers that exist, and ``--output`` is a file that can be written."""
    unknown = sorted(set(tiers) - {t.name for t in TIERS})
    if unknown or not tiers:
        return (f"--tiers {tiers!r} is not valid: " + (f"there is no tier {', '.join(unknown)}" if unknown else "it names no tier")
                + f"; choose from {''.join(t.name for t in TIERS)} (e.g. --tiers AB)")
    if output.is_dir():
        return f"--output {output} is not valid: it is a directory; name the report's file (e.g. {output / 'gpu_check.md'})"
    existing = next(p for p in (output.absolute(), *output.absolute().parents) if p.exists())
    if existing != output.absolute() and not existing.is_dir():
        return f"--output {output} is not valid: {existing} is a file, so no directory can be made there"
    try:  # as the report will be written: its folder made, the file opened (a read-only place refuses even root)
        output.parent.mkdir(parents=True, exist_ok=True)
        existed = output.exists()
        with open(output, "a"):
            pass
        if not existed:
            output.unlink()
    except OSError as error:
        return f"--output {output} is not valid: it cannot be written there ({error.strerror}); choose another place for the report"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks the check itself on a CPU)")
    parser.add_argument("--wheels", type=Path, default=REPO / "gpu_wheels", help="tier B's wheel folder (scripts/gpu_wheels.sh)")
    parser.add_argument("--output", type=Path, default=REPO / "results" / "gpu_check.md")
    parser.add_argument("--tiers", default="ABC", help="which tiers to run (default ABC)")
    args = parser.parse_args()
    problem = check_arguments(args.tiers, args.output)
    if problem:
        parser.error(problem)
    common = ["--device", args.device] + (["--quick"] if args.quick else [])
    command = f"scripts/gpu_check.sh{' ' + ' '.join(common) if common != ['--device', 'cuda'] else ''}"
    lines = ["# GPU check", "", f"`{command}`, {time.strftime('%Y-%m-%d %H:%M')}:", "", *machine(args.device), ""]
    statuses = {}
    for tier in TIERS:
        if tier.name not in args.tiers:
            continue
        missing = ffcv_missing() if tier.name == "C" else None
        if missing:
            status, text, seconds = "skipped", f"FFCV is not importable here ({missing}), so tier C did not run.", 0.0
        else:
            extra = ["--wheels", str(args.wheels)] if tier.name == "B" else []
            status, text, seconds = run_tier(tier, common + extra)
        statuses[tier.name] = status
        print(f"   tier {tier.name}: {status} in {seconds:.0f} s", flush=True)
        lines += [f"## Tier {tier.name}: {tier.title} — {status} ({seconds:.0f} s of {tier.budget_s} s)", "", text, ""]
    passed = all(statuses.get(t.name) == "passed" for t in TIERS if t.required and t.name in args.tiers)
    lines.insert(4, f"Result: {'passed' if passed else 'FAILED'} (tiers A and B must pass; "
                    + ", ".join(f"{name}: {status}" for name, status in statuses.items()) + ").\n")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print(f"report: {args.output}")
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
