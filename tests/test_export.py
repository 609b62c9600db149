"""A finished run's model.safetensors loads, strictly, into the plain model and reproduces the run's
test accuracy; checkpoints are plain torch.save files that hold each tensor once."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from safetensors import safe_open
from safetensors.torch import load_file

from tests.e2e import read_summary, run_train
from training.data import build_data
from training.export import load_exported

pytestmark = pytest.mark.slow


def _tensor_bytes(node) -> int:
    """The bytes of every tensor in a nested checkpoint payload."""
    if isinstance(node, torch.Tensor):
        return node.numel() * node.element_size()
    if isinstance(node, dict):
        node = list(node.values())
    return sum(_tensor_bytes(value) for value in node) if isinstance(node, (list, tuple)) else 0


def _accuracy(model: torch.nn.Module, summary: dict) -> float:
    """Top-1 accuracy on the run's test set, evaluated here with a plain loop."""
    data = build_data(OmegaConf.create(summary["config"]["data"]), 64, 256, 0, 0, 1, torch.device("cpu"))
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in data.test:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


@pytest.mark.parametrize(
    "setup",
    [[], ["+experiment=random_signin", "setting=small", "sparsity.target=0.9"], ["+experiment=str", "setting=small"]],
    ids=["dense_ham", "random_signin", "str"],
)
def test_the_exported_model_reproduces_the_runs_test_accuracy(tmp_path, setup):
    result = run_train(tmp_path, *setup, "model=lenet300_100", "trainer.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["test_acc"] == summary["test_acc"] and info["sparsity"] == summary["sparsity"]
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["ham_sparse"]) == info
    tensors = load_file(str(tmp_path / "model.safetensors"))
    assert not any("parametrizations" in name for name in tensors)  # θ merged under the plain names
    weights = [tensors[name] for name in ("1.weight", "3.weight", "5.weight")]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(summary["sparsity"], abs=1e-9)  # pruned weights are exact zeros
    if "sparsity.target=0.9" in setup:
        assert zeros == pytest.approx(0.9, abs=0.01)
    plain = torch.nn.Sequential(  # LeNet-300-100 written out, not built by the repository's code
        torch.nn.Flatten(), torch.nn.Linear(784, 300), torch.nn.ReLU(), torch.nn.Linear(300, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10),
    )
    plain.load_state_dict(tensors, strict=True)
    assert 100 * abs(_accuracy(plain, summary) - summary["test_acc"]) <= 0.01
    rebuilt, _ = load_exported(tmp_path)  # the same through model.json's description
    assert 100 * abs(_accuracy(rebuilt, summary) - summary["test_acc"]) <= 0.01


def test_resnet50_exports_into_torchvisions_resnet50_and_checkpoints_hold_each_tensor_once(tmp_path):
    result = run_train(
        tmp_path, "+experiment=rigl", "setting=small", "sparsity.target=0.9", "model=resnet50", "data=synthetic",
        "data.synthetic_train_size=16", "data.synthetic_test_size=16", "trainer.batch_size=8", "trainer.max_steps_per_epoch=1",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["build"] == "torchvision.models.resnet50(num_classes=10)"
    model = torchvision.models.resnet50(num_classes=10)
    model.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)

    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # a plain torch.save file
    assert "merged_weights" not in checkpoint
    tensor_bytes = _tensor_bytes(checkpoint)
    params = sum(p.numel() * 4 for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    prunable = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    # weights + BN buffers, one momentum buffer per parameter, one bool mask per prunable weight,
    # and under 0.1 MB of RNG states and counters; nothing stored twice
    expected = params + buffers + params + prunable
    assert expected <= tensor_bytes <= expected + 100_000, (tensor_bytes, expected)
