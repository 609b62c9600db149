"""One-shot prunability (the poster's first table): prune trained dense models globally by
magnitude at several sparsities, without fine-tuning, and evaluate them.

    python scripts/oneshot_prune.py multirun/paper_small/dense/* multirun/paper_small/dense_ham/* --sparsities 0.5 0.7 0.8 0.9

Each argument is the run directory of a finished dense ``train.py`` run (its ``summary.json`` and
``checkpoint.pt``). Each run's results go into its directory as ``oneshot.json`` (the unpruned and
pruned test accuracy, the achieved sparsity); a run that already has them for every sparsity asked
is not pruned again. For a model with BatchNorm, each pruned model is evaluated twice: as pruned,
with the running statistics of training (the paper's protocol), and after its BatchNorm statistics
were recalibrated on ``RECALIBRATION_BATCHES`` training batches (``test_acc_bn_recalibrated``; the
weights are the same), which tells whether what pruning lost lies in the weights or in the
statistics; the unpruned model is recalibrated too, as the control. The table (printed; also written to ``--output FILE`` when given) has, per pruned
fraction, dense and dense + HAM as mean ± sample std over the runs given (seeds), HAM's gain with
Welch's p, and the paper's ImageNet ResNet-50 numbers beside them (reference data).
``python scripts/compare.py <dirs or records> --table oneshot`` builds the same table from records.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analysis import runs as R  # noqa: E402
from analysis import tables as T  # noqa: E402
from sparse.oneshot import has_batch_norm, prune_global_magnitude, recalibrate_batch_norm  # noqa: E402
from training.checkpoint import CHECKPOINT_NAME, CheckpointError, read_checkpoint  # noqa: E402
from training.data.base import DataError  # noqa: E402
from training.data import build_data  # noqa: E402
from training.models import build_model  # noqa: E402
from training.records import SUMMARY_NAME  # noqa: E402


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return correct / total


#: training batches (of the run's batch size) over which BatchNorm statistics are recalibrated
RECALIBRATION_BATCHES = 100


def recalibrated_accuracy(model: torch.nn.Module, data) -> float:
    """The test accuracy of a copy of ``model`` whose BatchNorm statistics were recalibrated on the
    first :data:`RECALIBRATION_BATCHES` training batches (epoch 0's order, the run's seed)."""
    calibrated = copy.deepcopy(model)
    data.train.set_epoch(0)
    recalibrate_batch_norm(calibrated, iter(data.train), RECALIBRATION_BATCHES)
    return accuracy(calibrated, data.test)


def complete(results: dict, sparsities: list[float]) -> bool:
    """Whether ``oneshot.json``'s results cover every sparsity asked (and the recalibrated
    accuracies, when the model has BatchNorm: ``batch_norm`` says so)."""
    pruned = {float(p["target"]): p for p in results["pruned"]}
    if not set(sparsities) <= set(pruned) or "batch_norm" not in results:
        return False
    return not results["batch_norm"] or all("test_acc_bn_recalibrated" in pruned[s] for s in sparsities)


class RefusedInput(Exception):
    """A run or an option this script cannot use: one sentence, exit code 2 (as train.py)."""


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of a file's bytes (None if it does not exist)."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_results(done: Path, checkpoint_digest: str | None, sparsities: list[float]) -> dict | None:
    """``oneshot.json``'s results when they were computed from this checkpoint (its SHA-256,
    ``checkpoint_sha256``) and cover what is asked; None otherwise (also for a damaged file)."""
    try:
        results = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or results.get("checkpoint_sha256") != checkpoint_digest:
        return None
    try:
        return results if complete(results, sparsities) else None
    except (KeyError, TypeError, ValueError):
        return None


def prune_run(run_dir: Path, sparsities: list[float]) -> dict:
    """The run's one-shot results (``oneshot.json``), computed from its checkpoint unless they
    were computed from the same checkpoint before (:func:`cached_results`)."""
    done = run_dir / R.ONESHOT_FILE
    checkpoint_digest = file_sha256(run_dir / CHECKPOINT_NAME)
    results = cached_results(done, checkpoint_digest, sparsities) if checkpoint_digest else None
    if results is not None:
        return results
    summary_file = run_dir / SUMMARY_NAME
    if not summary_file.exists():
        raise RefusedInput(f"{run_dir}: no summary.json: one-shot pruning needs a finished train.py run")
    try:
        cfg = OmegaConf.create(R.read_summary_file(summary_file)["config"])
    except R.UnreadableRun as error:
        raise RefusedInput(str(error)) from None
    if cfg.sparsity.method != "dense":
        raise RefusedInput(f"{run_dir}: one-shot pruning applies to dense runs, this one used sparsity.method={cfg.sparsity.method}")
    weights = read_checkpoint(run_dir / CHECKPOINT_NAME)["model"]  # a damaged file is refused before the data is loaded
    data = build_data(cfg.data, cfg.trainer.batch_size, 1024, cfg.trainer.seed)
    model = build_model(cfg.model, data.in_channels, data.image_size, data.num_classes)
    model.load_state_dict(weights)
    batch_norm = has_batch_norm(model)
    results = {"test_acc": accuracy(model, data.test), "batch_norm": batch_norm, "pruned": [], "checkpoint_sha256": checkpoint_digest}
    if batch_norm:
        results["test_acc_bn_recalibrated"] = recalibrated_accuracy(model, data)
    for s in sparsities:
        pruned = copy.deepcopy(model)
        achieved = prune_global_magnitude(pruned, s)
        entry = {"target": s, "sparsity": achieved, "test_acc": accuracy(pruned, data.test)}
        if batch_norm:
            entry["test_acc_bn_recalibrated"] = recalibrated_accuracy(pruned, data)
        results["pruned"].append(entry)
    done.write_text(json.dumps(results, indent=1) + "\n")
    return results


def main() -> int:
    try:
        prune_and_tabulate()
    except (RefusedInput, CheckpointError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def prune_and_tabulate() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.5, 0.7, 0.8, 0.9])
    parser.add_argument("--output", type=Path, help="also write the table (Markdown) to this file; each run's results go into its own directory")
    args = parser.parse_args()
    for s in args.sparsities:
        if not 0 <= s < 1:
            raise RefusedInput(f"--sparsities {s:g} is not valid: a sparsity is in [0, 1)")
    for run_dir in args.runs:
        prune_run(run_dir, args.sparsities)
    runs = R.from_disk(args.runs)
    for run in runs:  # only the sparsities asked for, whatever an earlier call added
        run.summary["oneshot"]["pruned"] = [p for p in run.summary["oneshot"]["pruned"] if float(p["target"]) in args.sparsities]
    lines = [
        "# One-shot global magnitude pruning without fine-tuning",
        "",
        "Command: `python scripts/oneshot_prune.py " + " ".join(str(r) for r in args.runs)
        + " --sparsities " + " ".join(f"{s:g}" for s in args.sparsities) + "`",
        "",
        "Measured: test top-1 % of each trained dense model after pruning its conv/linear weights globally by",
        "magnitude, mean ± sample std over the runs (n). The last two columns are the paper's ImageNet ResNet-50",
        "numbers (reference data, not measured here).",
        "",
    ]
    for setting in sorted({r.setting for r in runs}):
        lines += [f"## {setting} setting", "", T.markdown(T.oneshot(runs, setting))]
    text = "\n".join(lines)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
