"""One-shot prunability (the poster's first table): prune trained dense models globally by
magnitude at several sparsities, without fine-tuning, and evaluate them.

    python scripts/oneshot_prune.py outputs/dense/<run> outputs/dense_ham/<run> --sparsities 0.5 0.7 0.8 0.9

Each argument is the run directory of a dense ``train.py`` run (its ``summary.json`` and
``checkpoint.pt``). Writes a markdown table (``--output``, default ``results/oneshot.md``) with the
measured test top-1 % beside the paper's ImageNet ResNet-50 numbers (reference data).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sparse.oneshot import prune_global_magnitude  # noqa: E402
from training.checkpoint import read_checkpoint  # noqa: E402
from training.data import build_data  # noqa: E402
from training.models import build_model  # noqa: E402

REFERENCE = REPO / "results" / "reference" / "paper_imagenet_resnet50.json"


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return correct / total


def load_run(run_dir: Path):
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = OmegaConf.create(summary["config"])
    if cfg.sparsity.method != "dense":
        raise SystemExit(f"{run_dir}: one-shot pruning applies to dense runs, this one used sparsity.method={cfg.sparsity.method}")
    data = build_data(cfg.data, cfg.trainer.batch_size, 1024, cfg.trainer.seed)
    model = build_model(cfg.model, data.in_channels, data.image_size, data.num_classes)
    model.load_state_dict(read_checkpoint(run_dir / "checkpoint.pt")["model"])
    label = f"{cfg.name} (HAM α={cfg.ham.alpha:g})" if cfg.ham.enabled else f"{cfg.name} (no HAM)"
    return label, model, data.test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.5, 0.7, 0.8, 0.9])
    parser.add_argument("--output", type=Path, default=REPO / "results" / "oneshot.md")
    args = parser.parse_args()
    for s in args.sparsities:
        if not 0 <= s < 1:
            raise SystemExit(f"--sparsities: {s} is not in [0, 1)")
    columns = []
    for run_dir in args.runs:
        label, model, test = load_run(run_dir)
        results = {}
        for s in args.sparsities:
            pruned = copy.deepcopy(model)
            achieved = prune_global_magnitude(pruned, s)
            results[s] = (accuracy(pruned, test), achieved)
        columns.append((label, accuracy(model, test), results))
    reference = json.loads(REFERENCE.read_text())["oneshot_pruning"]
    lines = [
        "# One-shot global magnitude pruning without fine-tuning",
        "",
        "Command: `python scripts/oneshot_prune.py " + " ".join(str(r) for r in args.runs)
        + " --sparsities " + " ".join(f"{s:g}" for s in args.sparsities) + "`",
        "",
        "Measured: test top-1 % of each trained dense model after pruning. The last two columns are the paper's",
        "ImageNet ResNet-50 numbers (reference data, not measured here).",
        "",
        "| sparsity | " + " | ".join(label for label, _, _ in columns) + " | paper HAM (ref.) | paper baseline (ref.) |",
        "|---|" + "---:|" * (len(columns) + 2),
        "| 0 (unpruned) | " + " | ".join(f"{100 * acc:.2f}" for _, acc, _ in columns) + " | – | – |",
    ]
    for s in args.sparsities:
        cells = [f"{100 * res[s][0]:.2f}" for _, _, res in columns]
        ref_ham, ref_base = reference["ham"].get(f"{s:g}"), reference["baseline"].get(f"{s:g}")
        lines.append(f"| {s:g} | " + " | ".join(cells) + f" | {ref_ham if ref_ham is not None else '–'} | {ref_base if ref_base is not None else '–'} |")
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
