"""ham_sparse.networks.load_exported builds an exported model only from its allow-list: an edited
model.json that names another module, function or argument runs nothing and is refused naming the
field; every constructor the trainer writes (this package's networks, torchvision's resnet50, timm's
create_model) loads its weights back exactly. (The exported models of real runs, evaluated to the
run's accuracy through the docs' code: tests/test_export.py.)"""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
from safetensors.torch import save_file

from networks import exported
from networks.exported import load_exported


def _folder(tmp_path, constructor, model=None):
    (tmp_path / "model.json").write_text(json.dumps({"constructor": constructor}))
    if model is not None:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    return tmp_path


@pytest.mark.parametrize("constructor, message", [
    ({"module": "os", "name": "system", "args": ["touch {marker}"], "kwargs": {}},
     "constructor.module='os', constructor.name='system' is not one this loader builds"),
    ({"module": "ham_sparse.networks", "name": "__init__", "args": [], "kwargs": {}}, "constructor.name='__init__' is not one"),
    ({"module": "ham_sparse.networks", "name": "lenet5", "args": [], "kwargs": {"in_channels": "1; touch {marker}"}},
     "constructor.kwargs.in_channels='1; touch {marker}' is not valid: it must be a positive integer"),
    ({"module": "ham_sparse.networks", "name": "lenet5", "args": [], "kwargs": {"num_classes": 10, "activation": "os.system"}},
     "constructor.kwargs has 'activation', which ham_sparse.networks.lenet5 is not built with here"),
    ({"module": "timm", "name": "create_model", "args": ["resnet18"], "kwargs": {"pretrained": True}},
     "constructor.kwargs.pretrained=True is not valid: it must be false"),
    ({"module": "torchvision.models", "name": "resnet50", "args": ["x"], "kwargs": {}}, "constructor.args=['x'] is not valid"),
], ids=["os-system", "dunder", "argument-type", "unknown-argument", "pretrained", "extra-argument"])
def test_a_constructor_outside_the_allow_list_runs_nothing_and_is_refused_naming_the_field(tmp_path, constructor, message):
    marker = tmp_path / "ran"
    constructor = json.loads(json.dumps(constructor).replace("{marker}", str(marker)))
    folder = _folder(tmp_path, constructor)
    with pytest.raises(ValueError, match=re.escape(message.replace("{marker}", str(marker)))):
        load_exported(folder)
    assert not marker.exists()


def test_a_model_json_that_is_a_fifo_is_refused(tmp_path):
    """In a process of its own with a time-out: reading a FIFO waits forever."""
    import subprocess
    import sys

    from tests.e2e import REPO, env

    os.mkfifo(tmp_path / "model.json")
    result = subprocess.run([sys.executable, "-c", f"from networks.exported import load_exported\nload_exported({str(tmp_path)!r})"],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"ValueError: {tmp_path / 'model.json'} is not there (or not a regular file)" in result.stderr


@pytest.mark.parametrize("constructor", [
    {"module": "ham_sparse.networks", "name": "lenet300_100", "args": [], "kwargs": {"in_channels": 1, "image_size": 28, "num_classes": 10}},
    {"module": "ham_sparse.networks", "name": "resnet20", "args": [],
     "kwargs": {"in_channels": 3, "image_size": 32, "num_classes": 10, "width": 1}},
    {"module": "torchvision.models", "name": "resnet50", "args": [], "kwargs": {"num_classes": 7}},
    {"module": "timm", "name": "create_model", "args": ["resnet18"], "kwargs": {"pretrained": False, "num_classes": 5, "in_chans": 3}},
], ids=["lenet300_100", "resnet20", "torchvision-resnet50", "timm"])
def test_every_constructor_the_trainer_writes_loads_its_weights_back(tmp_path, constructor):
    build, args, kwargs = exported.checked_constructor(constructor)
    torch.manual_seed(0)
    trained = build(*args, **kwargs)
    model, info = load_exported(_folder(tmp_path, constructor, trained))
    assert info["constructor"] == constructor and not model.training
    expected, got = trained.state_dict(), model.state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
