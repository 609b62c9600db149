"""A base class for optimizers that add something to another optimizer's step.

The wrapper *is* a ``torch.optim.Optimizer`` and shares ``param_groups`` and ``state`` with the
optimizer it wraps (the same dict objects), so an LR scheduler built on the wrapper drives the
wrapped optimizer too, and per-parameter buffers (e.g. momentum) are reachable from either object.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

import torch


def require_numbers(**values: Any) -> None:
    """Refuse a value that is no finite real number (``None`` passes: the rules that allow it say so;
    ``inf`` and ``nan`` never mean a setting here): a :class:`ValueError` that opens with
    ``name=value``, as the range checks do."""
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise ValueError(f"{name}={value!r} is not valid: it must be a number")
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name}={value!r} is not valid: it must be a finite number")


class OptimizerWrapper(torch.optim.Optimizer):
    """Share ``param_groups``/``state`` with ``optimizer``; subclasses add to :meth:`step`.

    The wrapper's own settings travel in ``state_dict()[self.state_key]`` next to the wrapped
    optimizer's usual ``state`` and ``param_groups`` entries.
    """

    state_key = "wrapper"

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{type(self).__name__} wraps an instantiated torch.optim.Optimizer, "
                f"got {type(optimizer).__name__}"
            )
        self.base_optimizer = optimizer
        # Optimizer.__init__ only normalises each group's "params" to a list (in place) and adds
        # no defaults (ours is empty); the group dicts stay the base optimizer's own.
        super().__init__(optimizer.param_groups, defaults={})
        self._share_base()

    def _share_base(self) -> None:
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
        self.defaults = self.base_optimizer.defaults

    # -- settings that subclasses save ------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The wrapper's own hyperparameters (saved in the state dict)."""
        return {}

    def load_settings(self, settings: dict[str, Any]) -> None:
        for key, value in settings.items():
            setattr(self, key, value)

    @staticmethod
    def check_arguments() -> None:
        """Subclasses: refuse settings they cannot run with (a :class:`ValueError` naming the argument)."""

    def check_loadable(self, state_dict: dict[str, Any]) -> None:
        """Refuse, before anything is loaded, a state dict whose settings entry is not this wrapper's
        (not a mapping, unknown or missing keys, a value the constructor would refuse, a flag that is
        not a bool) or whose per-parameter tensors do not have their parameter's shape (torch's
        optimizers check only the number of parameters): one :class:`ValueError` that names it."""
        name, settings, own = type(self).__name__, state_dict[self.state_key], self.settings()
        if not isinstance(settings, dict):
            raise ValueError(f"{name}.load_state_dict: its '{self.state_key}' entry is {type(settings).__name__}, not the mapping of "
                             f"{', '.join(own)} that {name}.state_dict() writes")
        unknown, missing = sorted(set(settings) - set(own)), sorted(set(own) - set(settings))
        if unknown or missing:
            raise ValueError(f"{name}.load_state_dict: its '{self.state_key}' entry " +
                             "; ".join(filter(None, [unknown and f"has unknown keys {', '.join(unknown)}",
                                                     missing and f"lacks {', '.join(missing)}"])) +
                             f" ({name}.state_dict() writes {', '.join(own)})")
        for key, value in own.items():
            if isinstance(value, bool) and not isinstance(settings[key], bool):
                raise ValueError(f"{name}.load_state_dict: {key}={settings[key]!r} is not valid: it must be true or false")
        try:
            self.check_arguments(**{k: settings[k] for k in inspect.signature(self.check_arguments).parameters})
        except ValueError as error:
            raise ValueError(f"{name}.load_state_dict: {error}") from None
        params = [p for group in self.param_groups for p in group["params"]]
        saved = [i for group in state_dict.get("param_groups", []) for i in group.get("params", [])]
        if len(saved) != len(params):
            return  # torch's load_state_dict says so, naming the counts
        for index, param in zip(saved, params):
            entry = state_dict.get("state", {}).get(index) or {}
            if not isinstance(entry, dict):
                raise ValueError(f"{name}.load_state_dict: the state of parameter {index} is {type(entry).__name__}, not the mapping of "
                                 f"buffers (tensors, numbers) that a torch optimizer writes")
            for key, value in entry.items():
                if not (value is None or torch.is_tensor(value) or isinstance(value, numbers.Real)):
                    raise ValueError(f"{name}.load_state_dict: the state '{key}' of parameter {index} is {type(value).__name__} "
                                     f"{value!r:.40}, not a tensor or a number: the state dict is damaged")
                if torch.is_tensor(value) and value.dim() > 0 and value.shape != param.shape:
                    raise ValueError(f"{name}.load_state_dict: the state '{key}' of parameter {index} has shape {tuple(value.shape)}, "
                                     f"but that parameter has shape {tuple(param.shape)}: the state dict was saved for another model")

    def _note_step(self) -> None:
        """Record a step taken outside ``step()`` (SAM's ``second_step``): an LR scheduler built on
        this optimizer tracks steps through the ``_opt_called`` flag its wrapper of ``step`` sets."""
        self._opt_called = True

    # -- torch.optim.Optimizer interface -----------------------------------------------------
    # state_dict and load_state_dict run this wrapper's own state-dict hooks (registered with
    # register_state_dict_pre_hook etc.) around the wrapped optimizer's, as torch.optim's do.
    def state_dict(self) -> dict[str, Any]:
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        state = self.base_optimizer.state_dict()
        state[self.state_key] = self.settings()
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            state = post_hook(self, state) or state
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            state_dict = pre_hook(self, state_dict) or state_dict
        if self.state_key not in state_dict:
            raise KeyError(
                f"state dict has no '{self.state_key}' entry: it was not saved by "
                f"{type(self).__name__}.state_dict()"
            )
        self.check_loadable(state_dict)
        self.load_settings(state_dict.pop(self.state_key))
        self.base_optimizer.load_state_dict(state_dict)
        # load_state_dict replaces the base optimizer's group dicts and state: share them again.
        self._share_base()
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # Before _share_base runs (inside Optimizer.__init__) the groups are being registered.
        if self.param_groups is self.base_optimizer.param_groups:
            self.base_optimizer.add_param_group(param_group)
        else:
            super().add_param_group(param_group)

    # -- pickle and copy.deepcopy --------------------------------------------------------------
    #: attributes that are scratch memory: not pickled, rebuilt empty by :meth:`_reset_scratch`
    scratch: tuple[str, ...] = ()

    #: what an LR scheduler puts on the instance it is built on (its wrapper of ``step`` and the flag
    #: that wrapper sets): a torch optimizer does not pickle them, and neither does this one
    scheduler_patch: tuple[str, ...] = ("step", "_opt_called")

    def __getstate__(self) -> dict[str, Any]:
        """Everything but hooks (torch.optim drops them too), an LR scheduler's patch of ``step``
        (as a torch optimizer's pickle and deepcopy leave it out) and scratch memory; the wrapped
        optimizer travels inside, and pickle's memo keeps ``param_groups``/``state`` shared."""
        return {
            key: value for key, value in self.__dict__.items()
            if key not in self.scratch and key not in self.scheduler_patch
            and not (key.startswith("_optimizer_") and key.endswith("_hooks"))
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # restores the attributes, empty hook registries, the step patch
        self._share_base()
        self._reset_scratch()

    def _reset_scratch(self) -> None:
        """Create the (empty) scratch attributes named in :attr:`scratch`."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({self.base_optimizer!r}, {args})"
