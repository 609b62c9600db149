"""The exported model: what a finished run hands to other code.

``model.safetensors`` holds the trained network as the forward pass uses it, under the plain
model's own parameter names: every reparameterized weight merged (θ = m ⊙ w for Sign-In, PILoT
and spred, STR's soft-thresholded weight), pruned weights as exact zeros, BatchNorm statistics
included. ``model.json`` (also stored as the safetensors file's metadata) says what it is and
everything needed to evaluate it without this repository: the constructor (torchvision's or timm's,
or the installed ``ham_sparse.networks``), the input (channels, size, evaluation crop and resize,
normalisation, class names: :class:`training.data.base.InputSpec`), the sparsity and test accuracy
the run measured, and the fingerprint of the configuration that trained it. docs/training.md shows
the evaluation with plain torch; loading it (from an allow-list of constructors: never import the names
a file says)::

    from ham_sparse.networks import load_exported
    model, info = load_exported(run_dir)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn
from torch.nn.utils import parametrize

from training.checkpoint import CheckpointError

EXPORT_NAME = "model.safetensors"
EXPORT_INFO_NAME = "model.json"
#: 2: the constructor outside the repository and the input recipe (1: a ``build`` expression naming training/)
EXPORT_FORMAT = "ham-sparse-model-2"


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
