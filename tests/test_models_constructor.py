"""model.json's constructor builds, with torchvision, timm or the installed ham_sparse.networks, the
same plain model as the trainer's registry: same parameter names and shapes, same output for the
same weights."""

from __future__ import annotations

import importlib

import pytest
import torch
from omegaconf import OmegaConf

from training.models import MODELS, build_model, constructor, constructor_expression

CASES = [
    *[(name, 1, 28) for name in MODELS if name not in ("timm", "resnet50")],
    ("resnet50", 3, 64),  # torchvision's own
    ("resnet50", 1, 64),  # a 1-channel stem: ham_sparse.networks.resnet50
    ("timm", 3, 32),
]


@pytest.mark.parametrize("name,channels,size", CASES, ids=[f"{n}-{c}ch" for n, c, _ in CASES])
def test_the_constructor_builds_the_registrys_model_outside_the_checkout(name, channels, size):
    cfg = OmegaConf.create({"name": name, "width": 1, "timm_name": "resnet10t"})
    record = constructor(cfg, channels, size, 7)
    assert not record["module"].startswith(("training", "networks"))  # names that exist only in the checkout
    torch.manual_seed(0)
    ours = build_model(cfg, channels, size, 7).eval()
    theirs = getattr(importlib.import_module(record["module"]), record["name"])(*record["args"], **record["kwargs"]).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    assert constructor_expression(record).startswith(f"{record['module']}.{record['name']}(")


def test_the_expression_reads_as_the_record():
    record = {"module": "timm", "name": "create_model", "args": ["resnet10t"], "kwargs": {"pretrained": False, "num_classes": 7}}
    assert constructor_expression(record) == "timm.create_model('resnet10t', pretrained=False, num_classes=7)"
