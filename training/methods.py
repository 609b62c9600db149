"""The sparsity method of a run, from the ``sparsity`` config group.

A method takes typed keyword arguments and owns their rules (``sparse.method.SparsityMethod.rules``);
this module only names where each argument lives in the config: ``sparsity.<argument>`` when the
group has that key (``target``, ``distribution``, ``sign_in``, ...), else
``sparsity.<method>_<argument>`` (RigL's ``delta_t`` is ``sparsity.rigl_delta_t``). A method's
``ValueError`` becomes the :class:`~training.config.ConfigError` that names the key.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sparse import METHODS, SparsityMethod


def argument_key(method: str, argument: str, group: DictConfig | dict) -> str:
    """The ``sparsity`` key (without the group's name) that holds ``method``'s ``argument``."""
    return argument if argument in group else f"{method}_{argument}"


def method_arguments(group: DictConfig | dict, method: str | None = None) -> dict[str, Any]:
    """The keyword arguments of ``method`` (default: ``sparsity.method``) as the group sets them."""
    method = method or group["method"]
    return {a: group[argument_key(method, a, group)] for a in METHODS[method].arguments()}


def config_message(error: ValueError, method: str, group: DictConfig | dict) -> str:
    """A method's ``argument=value ...`` message with the argument replaced by its config key."""
    text = str(error)
    found = re.match(r"(\w+)=", text)
    if found is None:
        return f"sparsity.method={method}: {text}"
    return f"sparsity.{argument_key(method, found.group(1), group)}{text[len(found.group(1)):]}"


def check_method_settings(group: DictConfig | dict) -> None:
    """Every method's rules on the values the group sets (a bad knob is refused whichever method
    runs), and ``sparsity.sign_in`` only with a method that takes it; a :class:`ValueError` names the key."""
    from training.config import ConfigError

    if isinstance(group, DictConfig):  # plain values: read once per method below
        group = OmegaConf.to_container(group, resolve=True)
    takes_sign_in = [name for name, cls in METHODS.items() if "sign_in" in cls.arguments()]
    if group["sign_in"] and group["method"] not in takes_sign_in:
        raise ConfigError(f"sparsity.sign_in={group['sign_in']!r} is not valid: it must be false unless sparsity.method is "
                          f"{', '.join(takes_sign_in[:-1])} or {takes_sign_in[-1]}")
    for name in dict.fromkeys((group["method"], *METHODS)):  # the run's own method first
        try:
            METHODS[name].check_arguments(**method_arguments(group, name))
        except ValueError as error:
            raise ConfigError(config_message(error, name, group)) from None


def build_method(group: DictConfig) -> SparsityMethod:
    """The run's method, built from the group (presets filled: ``training.presets.apply_preset``)."""
    from training.config import ConfigError

    try:
        return METHODS[group.method](**method_arguments(group))
    except ValueError as error:
        raise ConfigError(config_message(error, group.method, group)) from None
