"""A finished run's model.safetensors loads, strictly, into the plain model and reproduces the run's
test accuracy; checkpoints are plain torch.save files that hold each tensor once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from safetensors import safe_open
from safetensors.torch import load_file

from tests.doc_examples import IN_RUN_DIRECTORY
from tests.e2e import read_summary, run_train
from training.data import build_data, fashion_mnist_dir

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


#: after the docs example (run in the run directory): the test images and labels, read here
#: from the stored files (the IDX files as Fashion-MNIST ships them; an ImageFolder's val/ folders)
_FASHION_MNIST_TEST_IMAGES = """
import gzip
def idx(name):
    with gzip.open(f"{FASHION_MNIST}/{name}.gz") as f:
        data = f.read()
    ndim = data[3]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape([int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)])
TEST = [(Image.fromarray(image), int(label)) for image, label in zip(idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte"))]
TEST = TEST[:TEST_SUBSET]  # the run's data.test_subset: the first images of the test split
"""
_IMAGEFOLDER_TEST_IMAGES = """
from pathlib import Path
TEST = [(Image.open(path), label) for label, name in enumerate(spec["class_names"]) for path in sorted(Path(VAL, name).iterdir())]
"""
_EVALUATE = """
import importlib.util, json, sys
assert all(importlib.util.find_spec(name) is None for name in ("training", "networks", "analysis")), "the checkout is importable"
assert "omegaconf" not in sys.modules
correct = 0
with torch.no_grad():
    for start in range(0, len(TEST), 500):
        batch = TEST[start:start + 500]
        predicted = model(torch.cat([model_input(image) for image, _ in batch])).argmax(1)
        correct += sum(int(p) == label for p, (_, label) in zip(predicted, batch))
print(json.dumps({"test_acc": correct / len(TEST)}))
"""


def _standalone_accuracy(run_dir, test_images: str, **constants) -> float:
    """The docs' evaluation of the exported model (docs/training.md), run in ``run_dir`` as a user's
    own script: another process, without the checkout on its path (only the installed ham_sparse),
    and without any hidden import from the checkout (omegaconf is not imported either)."""
    (_, example), = IN_RUN_DIRECTORY
    script = run_dir / "evaluate.py"
    script.write_text(example + "".join(f"{k} = {v!r}\n" for k, v in constants.items()) + test_images + _EVALUATE)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(script)], cwd=run_dir, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])["test_acc"]


@pytest.mark.parametrize(
    "setup",
    [["model=lenet300_100", "trainer.epochs=2"],
     ["model=lenet300_100", "trainer.epochs=2", "+experiment=random_signin", "setting=small", "sparsity.target=0.9"],
     ["model=lenet300_100", "trainer.epochs=2", "+experiment=str", "setting=small"],
     ["model=cnn_small", "trainer.epochs=1", "data.train_subset=6000", "+experiment=random_signin", "setting=small"]],
    ids=["dense_ham", "random_signin", "str", "cnn_small"],
)
def test_the_exported_model_reproduces_the_runs_test_accuracy(tmp_path, setup):
    result = run_train(tmp_path, *setup)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["test_acc"] == summary["test_acc"] and info["sparsity"] == summary["sparsity"]
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["ham_sparse"]) == info
    tensors = load_file(str(tmp_path / "model.safetensors"))
    assert not any("parametrizations" in name for name in tensors)  # θ merged under the plain names
    weights = [t for name, t in tensors.items() if name.endswith(".weight") and t.ndim > 1]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(summary["sparsity"], abs=1e-9)  # pruned weights are exact zeros
    if "sparsity.target=0.9" in setup:
        assert zeros == pytest.approx(0.9, abs=0.01)
    # what model.json says about the input, against the data set's own facts
    assert info["input"]["channels"] == 1 and info["input"]["size"] == 28 and info["input"]["crop_ratio"] is None
    assert info["input"]["mean"][0] == pytest.approx(0.2860, abs=1e-4) and info["input"]["std"][0] == pytest.approx(0.3530, abs=1e-4)
    assert info["input"]["class_names"][0] == "T-shirt/top" and len(info["input"]["class_names"]) == 10
    assert info["constructor"]["module"] == "ham_sparse.networks" and "training" not in info["build"]
    if "model=lenet300_100" in setup:
        plain = torch.nn.Sequential(  # LeNet-300-100 written out, not built by the repository's code
            torch.nn.Flatten(), torch.nn.Linear(784, 300), torch.nn.ReLU(), torch.nn.Linear(300, 100), torch.nn.ReLU(),
            torch.nn.Linear(100, 10),
        )
        plain.load_state_dict(tensors, strict=True)
        assert 100 * abs(_accuracy(plain, summary) - summary["test_acc"]) <= 0.01
    standalone = _standalone_accuracy(tmp_path, _FASHION_MNIST_TEST_IMAGES, FASHION_MNIST=str(fashion_mnist_dir(None)),
                                      TEST_SUBSET=summary["config"]["data"]["test_subset"])
    assert summary["test_acc"] > 0.3 and 100 * abs(standalone - summary["test_acc"]) <= 0.01, (standalone, summary["test_acc"])


def test_an_imagefolder_model_evaluates_from_model_json_on_the_jpegs(tmp_path, jpeg_tree):
    """The evaluation crop (0.875 of the shorter side), the resize to data.val_res, the RGB mean/std and
    the class names (the folders, sorted) reach model.json: the docs' evaluation on the JPEGs gives the
    run's accuracy."""
    result = run_train(
        tmp_path, "data=imagefolder", f"data.root={jpeg_tree}", "data.train_subset=null", "data.test_subset=null", "model=lenet5",
        "data.workers=2", "data.min_res=48", "data.max_res=48", "data.val_res=48", "trainer.batch_size=32", "trainer.eval_batch_size=250",
        "optimizer.lr=0.02", "ham=disabled", "trainer.epochs=1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(tmp_path)
    spec = json.loads((tmp_path / "model.json").read_text())["input"]
    assert (spec["channels"], spec["size"], spec["crop_ratio"]) == (3, 48, 0.875)
    assert spec["mean"] == [0.485, 0.456, 0.406] and spec["class_names"] == sorted(p.name for p in (jpeg_tree / "val").iterdir())
    standalone = _standalone_accuracy(tmp_path, _IMAGEFOLDER_TEST_IMAGES, VAL=str(jpeg_tree / "val"))
    assert summary["test_acc"] > 0.3 and 100 * abs(standalone - summary["test_acc"]) <= 0.01, (standalone, summary["test_acc"])


def test_resnet50_exports_into_torchvisions_resnet50_and_checkpoints_hold_each_tensor_once(tmp_path):
    result = run_train(
        tmp_path, "+experiment=rigl", "setting=small", "sparsity.target=0.9", "model=resnet50", "data=synthetic",
        "data.synthetic_train_size=16", "data.synthetic_test_size=16", "data.train_subset=null", "data.test_subset=null", "trainer.batch_size=8", "trainer.max_steps_per_epoch=1",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["build"] == "torchvision.models.resnet50(num_classes=10)"
    assert info["constructor"] == {"module": "torchvision.models", "name": "resnet50", "args": [], "kwargs": {"num_classes": 10}}
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
