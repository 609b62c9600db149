"""Models by name (the ``model`` config group): the repository's networks (``networks/``, installed
as ``ham_sparse.networks``: ``lenet300_100``, ``lenet5``, ``cnn``, ``cnn_small``, ``resnet20``,
``resnet18``, torchvision's ``resnet50``) and any timm model (``model.name=timm
model.timm_name=...``). All are built for the data's channels, image size and classes.

:func:`constructor` says how code outside this repository builds the same plain model (written into
an exported model's ``model.json``).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from omegaconf import DictConfig
from torch import nn

import networks


def timm_model(in_channels: int, image_size: int, num_classes: int, timm_name: str | None = None) -> nn.Module:
    """Any timm model by name, untrained."""
    import timm

    return timm.create_model(timm_name, pretrained=False, num_classes=num_classes, in_chans=in_channels)


#: The model registry: ``model.name`` -> builder ``(in_channels, image_size, num_classes, **its keys)``;
#: a builder's own keyword arguments are the model group's keys it reads (``width``, ``timm_name``).
MODELS: dict[str, Callable[..., nn.Module]] = {
    **{name: getattr(networks, name) for name in ("lenet300_100", "lenet5", "cnn", "cnn_small", "resnet20", "resnet18", "resnet50")},
    "timm": timm_model,
}
#: where the installed package puts ``networks/`` (pyproject.toml's package-dir)
INSTALLED_NETWORKS = "ham_sparse.networks"


def _own_keys(cfg: DictConfig) -> dict[str, Any]:
    """The model group's keys that ``cfg.name``'s builder takes."""
    if cfg.name not in MODELS:
        raise ValueError(f"model.name={cfg.name!r} is not valid; allowed values: {', '.join(MODELS)}")
    own = [p for p in inspect.signature(MODELS[cfg.name]).parameters if p not in ("in_channels", "image_size", "num_classes")]
    return {p: cfg[p] for p in own}


def build_model(cfg: DictConfig, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """The model named by ``cfg.name`` (the ``model`` config group), with the group's keys its builder takes."""
    return MODELS[cfg.name](in_channels, image_size, num_classes, **_own_keys(cfg))


def constructor(cfg: DictConfig, in_channels: int, image_size: int, num_classes: int) -> dict[str, Any]:
    """How to build :func:`build_model`'s plain model without this repository:
    ``getattr(importlib.import_module(c["module"]), c["name"])(*c["args"], **c["kwargs"])``.
    torchvision's own ``resnet50`` for 3 channels, ``timm.create_model`` for timm models, and the
    installed ``ham_sparse.networks`` for the rest."""
    keys = _own_keys(cfg)
    if cfg.name == "resnet50" and in_channels == 3:
        return {"module": "torchvision.models", "name": "resnet50", "args": [], "kwargs": {"num_classes": num_classes}}
    if cfg.name == "timm":
        return {"module": "timm", "name": "create_model", "args": [keys["timm_name"]],
                "kwargs": {"pretrained": False, "num_classes": num_classes, "in_chans": in_channels}}
    return {"module": INSTALLED_NETWORKS, "name": cfg.name, "args": [],
            "kwargs": {"in_channels": in_channels, "image_size": image_size, "num_classes": num_classes, **keys}}


def constructor_expression(c: dict[str, Any]) -> str:
    """:func:`constructor`'s record as the Python expression a reader types."""
    arguments = [repr(a) for a in c["args"]] + [f"{k}={v!r}" for k, v in c["kwargs"].items()]
    return f"{c['module']}.{c['name']}({', '.join(arguments)})"
