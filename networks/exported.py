"""Load a model that ``train.py`` exported (``model.safetensors`` and ``model.json`` in a run directory)
without this checkout, and without running anything the file names.

``model.json``'s ``constructor`` says which function builds the untrained network. A loader that
imported ``constructor.module`` and called ``constructor.name`` would run whatever an edited file
names (``{"module": "os", "name": "system", ...}``). :func:`load_exported` builds only from an
allow-list — this package's networks, torchvision's ``resnet50`` and ``timm.create_model`` — with
every argument's name and type checked, refuses anything else naming the field, and reads the
weights with safetensors (tensors only, no pickle)::

    from ham_sparse.networks import load_exported
    model, info = load_exported("outputs/default/...")   # model.eval() is set; info: model.json's content
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any, Callable

from torch import nn

from . import resnet, small

#: the file names a run directory holds (training/export.py writes them)
WEIGHTS_NAME, INFO_NAME = "model.safetensors", "model.json"
#: this package's constructors by name (``model.json`` names the installed package ``ham_sparse.networks``)
OWN = {"lenet300_100": small.lenet300_100, "lenet5": small.lenet5, "cnn": small.cnn, "cnn_small": small.cnn_small,
       "resnet20": resnet.resnet20, "resnet18": resnet.resnet18, "resnet50": resnet.resnet50}
OWN_MODULE = "ham_sparse.networks"


def _positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _torchvision_resnet50(**kwargs: Any) -> nn.Module:
    from torchvision.models import resnet50

    return resnet50(**kwargs)


def _timm_model(name: str, **kwargs: Any) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise ValueError(f"model.json's constructor.args[0]={name!r} is not a model timm knows")
    return timm.create_model(name, **kwargs)


#: (module, name) -> (builder, the positional arguments' rules, each keyword's rule); a rule is
#: (check, what it must be)
Rule = tuple[Callable[[Any], bool], str]
ALLOWED: dict[tuple[str, str], tuple[Callable[..., nn.Module], list[Rule], dict[str, Rule]]] = {
    **{(OWN_MODULE, name): (build, [], {"in_channels": (_positive_int, "a positive integer"), "image_size": (_positive_int, "a positive integer"),
                                        "num_classes": (_positive_int, "a positive integer"), "width": (_positive_int, "a positive integer")})
       for name, build in OWN.items()},
    ("torchvision.models", "resnet50"): (_torchvision_resnet50, [], {"num_classes": (_positive_int, "a positive integer")}),
    ("timm", "create_model"): (_timm_model, [(lambda v: isinstance(v, str) and v != "", "a timm model name")],
                               {"pretrained": (lambda v: v is False, "false (the weights are the run's)"),
                                "num_classes": (_positive_int, "a positive integer"), "in_chans": (_positive_int, "a positive integer")}),
}


def _read_info(folder: Path) -> dict[str, Any]:
    path = folder / INFO_NAME
    if not path.is_file():
        raise ValueError(f"{path} is not there (or not a regular file): a folder of an exported model holds {INFO_NAME} and {WEIGHTS_NAME}")
    try:
        info = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(info, dict) or not isinstance(info.get("constructor"), dict):
        raise ValueError(f"{path} has no constructor (a mapping of module, name, args, kwargs): it is not an exported model's")
    return info


def checked_constructor(constructor: dict[str, Any], where: str = INFO_NAME) -> tuple[Callable[..., nn.Module], list[Any], dict[str, Any]]:
    """The builder and arguments that ``constructor`` names, if the allow-list has them (:data:`ALLOWED`);
    otherwise a :class:`ValueError` that names the field. Nothing is imported from the file's names."""
    key = (constructor.get("module"), constructor.get("name"))
    if key not in ALLOWED:
        allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED)
        raise ValueError(f"{where}'s constructor.module={key[0]!r}, constructor.name={key[1]!r} is not one this loader builds "
                         f"(allowed: {allowed}); it imports nothing a file names: an edited model.json could run any code")
    build, positional, keywords = ALLOWED[key]  # type: ignore[index]
    args, kwargs = constructor.get("args", []), constructor.get("kwargs", {})
    if not isinstance(args, list) or len(args) != len(positional):
        raise ValueError(f"{where}'s constructor.args={args!r} is not valid: {key[0]}.{key[1]} takes {len(positional)} positional argument(s)")
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}'s constructor.kwargs={kwargs!r} is not valid: it must be a mapping")
    for index, (value, (check, meaning)) in enumerate(zip(args, positional)):
        if not check(value):
            raise ValueError(f"{where}'s constructor.args[{index}]={value!r} is not valid: it must be {meaning}")
    for name, value in kwargs.items():
        if name not in keywords:
            raise ValueError(f"{where}'s constructor.kwargs has {name!r}, which {key[0]}.{key[1]} is not built with here "
                             f"(allowed: {', '.join(keywords)})")
        check, meaning = keywords[name]
        if not check(value):
            raise ValueError(f"{where}'s constructor.kwargs.{name}={value!r} is not valid: it must be {meaning}")
    return build, args, kwargs


def load_exported(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The exported model in ``folder`` (evaluation mode) and ``model.json``'s content. The network is
    built from the allow-list only (:func:`checked_constructor`), its weights read with safetensors
    and loaded with ``strict=True``. A :class:`ValueError` names what is wrong."""
    folder = Path(folder)
    info = _read_info(folder)
    build, args, kwargs = checked_constructor(info["constructor"], str(folder / INFO_NAME))
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ValueError(f"{weights} is not there (or not a regular file): the exported model's weights")
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise ValueError("loading an exported model needs safetensors: pip install safetensors") from None
    try:
        tensors = load_file(str(weights))
    except Exception as error:  # safetensors' own error for a damaged file
        raise ValueError(f"{weights} cannot be read as safetensors ({' '.join(str(error).split())[:200]})") from None
    model = build(*args, **kwargs)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{weights} does not fit the network {folder / INFO_NAME} describes: {str(error).splitlines()[0]}") from None
    return model.eval(), info
