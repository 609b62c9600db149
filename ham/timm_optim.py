"""HAM through timm's optimizer factory (``timm.optim.create_optimizer_v2`` and timm's ``train.py``).

timm builds an optimizer from its parameters; HAM wraps one that exists. :func:`register_timm_optimizers`
adds, for each of timm's optimizers named, a variant ``ham<name>`` (``hamsgd``, ``hammomentum``,
``hamadamw``, ...) that builds timm's optimizer and wraps it in :class:`~ham_sparse.ham.HAM`. HAM's
settings are keyword arguments with the prefix ``ham_`` (``ham_alpha``, ``ham_beta``, ``ham_clamp``,
``ham_max_weight_norm``, ``ham_sign``, ``ham_fused``)::

    from ham_sparse.ham.timm_optim import register_timm_optimizers
    register_timm_optimizers()
    optimizer = timm.optim.create_optimizer_v2(model, opt="hamsgd", lr=0.1, weight_decay=1e-4, ham_alpha=200.0)

The name has no underscore: timm reads ``ham_sgd`` as the prefix ``ham`` and the optimizer ``sgd``.
timm is imported only when this function runs; the add-on itself depends only on torch.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from .ham import HAM

#: timm's optimizers that get a HAM variant by default
DEFAULT_BASES = ("sgd", "momentum", "adamw", "adam", "nadamw", "lamb", "lars")
#: the prefix of HAM's keyword arguments, and of the registered names
PREFIX = "ham"


def ham_over(build_base: Callable[..., torch.optim.Optimizer]) -> Callable[..., HAM]:
    """A factory with timm's signature ``(params, **optimizer_args)``: the base optimizer from the
    arguments without the ``ham_`` prefix, wrapped in HAM with those that have it."""

    def build(params: Iterable[Any], **kwargs: Any) -> HAM:
        ham_args = {key[len(PREFIX) + 1:]: kwargs.pop(key) for key in [k for k in kwargs if k.startswith(PREFIX + "_")]}
        return HAM(build_base(params, **kwargs), **ham_args)

    return build


def register_timm_optimizers(bases: Iterable[str] = DEFAULT_BASES, registry: Any = None) -> list[str]:
    """Register ``ham<base>`` for each of timm's optimizers in ``bases`` (into timm's default
    registry unless ``registry`` is given), with the base's own defaults and capabilities; returns
    the registered names. Calling it again is harmless."""
    from timm.optim._optim_factory import OptimInfo, default_registry

    registry = registry or default_registry
    names = []
    for base in bases:
        info = registry.get_optimizer_info(base)
        name = PREFIX + info.name
        registry.register(OptimInfo(
            name=name, opt_class=ham_over(registry.get_optimizer_class(info, bind_defaults=False)),  # type: ignore[arg-type]
            description=f"HAM over {info.description or info.name}", has_eps=info.has_eps, has_momentum=info.has_momentum,
            has_betas=info.has_betas, num_betas=info.num_betas, second_order=info.second_order, defaults=info.defaults))
        names.append(name)
    return names
