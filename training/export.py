"""The exported model: what a finished run hands to other code.

``model.safetensors`` holds the trained network as the forward pass uses it, under the plain
model's own parameter names: every reparameterized weight merged (θ = m ⊙ w for Sign-In, PILoT
and spred, STR's soft-thresholded weight), pruned weights as exact zeros, BatchNorm statistics
included. ``model.json`` (also stored as the safetensors file's metadata) says what it is: the
model, how to build it, the data's shape, the sparsity and test accuracy the run measured, and the
fingerprint of the configuration that trained it. Loading it::

    from safetensors.torch import load_file
    model = torchvision.models.resnet50(num_classes=1000)   # or model.json's "build" expression
    model.load_state_dict(load_file("model.safetensors"), strict=True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from safetensors.torch import load_file, save
from torch import nn
from torch.nn.utils import parametrize

from training.checkpoint import CheckpointError
from training.models import build_model

EXPORT_NAME = "model.safetensors"
EXPORT_INFO_NAME = "model.json"
EXPORT_FORMAT = "ham-sparse-model-1"


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict with every parametrization replaced by the tensor it computes (the
    plain model's key, e.g. ``conv1.weight``); contiguous CPU copies that share no memory."""
    state = {name: t for name, t in model.state_dict().items() if ".parametrizations." not in f".{name}"}
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if parametrize.is_parametrized(module):
                for tensor_name in module.parametrizations:
                    state[f"{module_name}.{tensor_name}" if module_name else tensor_name] = getattr(module, tensor_name)
    return {name: t.detach().to("cpu", copy=True).contiguous() for name, t in state.items()}


def build_expression(cfg: DictConfig, in_channels: int, image_size: int, num_classes: int) -> str:
    """A Python expression that builds the plain model the exported weights load into."""
    if cfg.name == "resnet50" and in_channels == 3:
        return f"torchvision.models.resnet50(num_classes={num_classes})"
    if cfg.name == "timm":
        return f"timm.create_model({cfg.timm_name!r}, pretrained=False, num_classes={num_classes}, in_chans={in_channels})"
    return (
        f"training.models.build_model(omegaconf.OmegaConf.create({{'name': {cfg.name!r}, 'width': {cfg.width}}}), "
        f"{in_channels}, {image_size}, {num_classes})"
    )


def export_model(run_dir: Path, model: nn.Module, info: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``run_dir`` (each atomically)."""
    info = {"format": EXPORT_FORMAT, **info}
    path, info_path = run_dir / EXPORT_NAME, run_dir / EXPORT_INFO_NAME
    tmp, info_tmp = (p.with_name(p.name + ".tmp") for p in (path, info_path))
    try:
        # serialized in memory first, so that a failing write is an OSError (safetensors raises its own error)
        tmp.write_bytes(save(plain_state_dict(model), metadata={"ham_sparse": json.dumps(info)}))
        info_tmp.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(tmp, path)
        os.replace(info_tmp, info_path)
    except OSError as error:  # a full disk, ...
        tmp.unlink(missing_ok=True)
        info_tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write the exported model {path} ({error.strerror or error}); the checkpoint holds the finished "
            f"run: make room and run the same command again to write it"
        ) from error
    return path


def load_exported(run_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The exported model of ``run_dir``, built from ``model.json`` and loaded strictly, with its info."""
    info = json.loads((run_dir / EXPORT_INFO_NAME).read_text())
    model = build_model(DictConfig(info["model_config"]), info["in_channels"], info["image_size"], info["num_classes"])
    model.load_state_dict(load_file(str(run_dir / EXPORT_NAME)), strict=True)
    return model, info
