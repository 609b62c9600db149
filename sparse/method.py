"""The interface between the trainer and a sparsity method, and the masked-method base.

The trainer calls, in this order::

    method.prepare(model)                      # before the optimizer exists: reparameterize, init masks
    method.attach(optimizer, steps_per_epoch, epochs)   # the optimizer's groups follow decayed_parameters()
                                                        # and undecayed_parameters()
    for each step:  backward -> method.before_step(step) -> optimizer.step() -> method.after_step(step)
                    (SAM: before_step(step, update=False) before the first step, before_step(step)
                    before the second: masks and penalties apply to both gradients; masks change
                    only with the second, which DDP has all-reduced)
    for each epoch: method.end_epoch(epochs_done, train_acc)   # before evaluation and checkpoint
                    (if method.prunes_at(epochs_done): the trainer evaluates before end_epoch too)
    method.metrics(); method.state_dict(); method.load_state_dict(state)

Masking is done in place: gradients are masked before the step (so no optimizer, weight decay or
HAM moves a pruned weight, and momentum stays 0 there) and pruned weights and their optimizer
buffers are zeroed again after it. We measured this against a ``torch.nn.utils.parametrize`` mask
(``benchmarks/masking.py``, ``results/masking.md``): per training step the two cost about the same
on ResNet-20, and on the tiny LeNet-300-100 the parametrization was faster. In-place masking is
chosen because a mask inside the forward pass zeroes the gradient at pruned positions, which
RiGL's grow step needs dense; because the optimizer, HAM and checkpoints then see plain weight
tensors; and because it composes with Sign-In's m ⊙ w parametrization.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch
from torch import nn

from .prunable import prunable_layers
from .reparam import register_product
from .weights import PrunableWeight


#: an argument's rule: a test of its value and what the value must be, in words
Rule = tuple[Callable[[Any], bool], str]


class SparsityMethod:
    """``dense``: no sparsity. Subclasses override the hooks they need.

    Every method takes keyword arguments only; :attr:`rules` says what each must be, and the
    constructor refuses any other value with a :class:`ValueError` that opens with
    ``argument=value`` (:meth:`check_arguments`, which a config layer may call first).
    """

    reparameterization: str | None = None  # "hyperbolic"/"balanced": θ = m ⊙ w
    split_constant = 1.0  # m² - w² of the hyperbolic split at initialisation
    #: argument -> rule, merged along the class hierarchy (:meth:`argument_rules`)
    rules: dict[str, Rule] = {"target": (lambda v: 0 <= v < 1, "in [0, 1)")}

    def __init__(self, *, keep_first_dense: bool = False, keep_last_dense: bool = False) -> None:
        self.keep_first_dense, self.keep_last_dense = keep_first_dense, keep_last_dense
        self.layers: list[PrunableWeight] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.steps_per_epoch, self.epochs = 1, 1

    @classmethod
    @functools.cache
    def arguments(cls) -> tuple[str, ...]:
        """The keyword arguments the method takes (its own and those it hands to its bases); read off
        the signatures once per class (a planner checks every method for every job)."""
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                names += [p.name for p in inspect.signature(klass.__init__).parameters.values()
                          if p.kind is p.KEYWORD_ONLY and p.name not in names]
        return tuple(names)

    @classmethod
    def argument_rules(cls) -> dict[str, Rule]:
        rules: dict[str, Rule] = {}
        for klass in reversed(cls.__mro__):
            rules.update(vars(klass).get("rules", {}))
        return rules

    @classmethod
    def check_arguments(cls, **arguments: Any) -> None:
        """Refuse an argument that breaks its rule (``None``: not given, nothing to check)."""
        rules = cls.argument_rules()
        for name, value in arguments.items():
            if name in rules and value is not None and not rules[name][0](value):
                raise ValueError(f"{name}={value!r} is not valid: it must be {rules[name][1]}")

    # -- hooks ------------------------------------------------------------------------------
    def prepare(self, model: nn.Module) -> None:
        self.layers = [PrunableWeight(n, m) for n, m in prunable_layers(model, self.keep_first_dense, self.keep_last_dense)]
        if self.reparameterization is not None:
            for layer in self.layers:
                layer.use_product(*register_product(layer.module, self.reparameterization, self.split_constant))

    def attach(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int) -> None:
        self.optimizer, self.steps_per_epoch, self.epochs = optimizer, steps_per_epoch, epochs

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def before_step(self, step: int, update: bool = True) -> None:
        """Gradients are ready (all-reduced under DDP); the optimizer has not stepped yet.
        ``update=False``: a second gradient of the same step (SAM): change no mask."""

    def after_step(self, step: int) -> None:
        """The optimizer (and HAM) has stepped; ``step`` counts from 0."""

    def end_epoch(self, epochs_done: int, train_acc: float) -> None:
        """After the training part of an epoch, before evaluation and the checkpoint."""

    def prunes_at(self, epochs_done: int) -> bool:
        """Whether ``end_epoch(epochs_done)`` prunes at once (the trainer then evaluates before it too)."""
        return False

    def metrics(self) -> dict[str, float]:
        return {}

    def decayed_parameters(self) -> list[nn.Parameter]:
        """Non-weight parameters that must get the base weight decay (STR's thresholds)."""
        return []

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """Trained tensors whose only decay is the method's own penalty (PILoT, spred: m and w):
        the optimizer gives them no base weight decay."""
        return []

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # -- shared helpers -----------------------------------------------------------------------
    def thetas(self) -> list[torch.Tensor]:
        return [layer.theta() for layer in self.layers]

    @property
    def optimizer_state(self) -> dict:
        return self.optimizer.state if self.optimizer is not None else {}


class MaskedMethod(SparsityMethod):
    """A method with a boolean keep-mask per prunable layer (``None``: the layer is dense now), at
    ``target`` sparsity; ``sign_in``: θ = m ⊙ w with Sign-In's resets every ``sign_in_period`` of
    training, and the base weight decay on m and w only if ``sign_in_weight_decay``."""

    rules = {"sign_in_period": (lambda v: 0 < v <= 1, "in (0, 1] (a fraction of training)")}

    def __init__(self, *, target: float, sign_in: bool = False, sign_in_period: float = 0.1, sign_in_weight_decay: bool = False,
                 **common: Any) -> None:
        super().__init__(**common)
        self.check_arguments(target=target, sign_in_period=sign_in_period)
        self.target, self.sign_in, self.sign_in_period, self.sign_in_weight_decay = target, sign_in, sign_in_period, sign_in_weight_decay
        if sign_in:
            self.reparameterization = "hyperbolic"
        self.masks: list[torch.Tensor | None] = []

    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        self.masks = [None] * len(self.layers)

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """Sign-In's m and w unless ``sign_in_weight_decay`` is on (the base decay would pull on both:
        an L1-like pull on θ = m ⊙ w, since ‖m‖² + ‖w‖² ≥ 2‖θ‖₁); off by default, as measured in
        results/signin_weight_decay.md."""
        if self.sign_in and not self.sign_in_weight_decay:
            return [p for layer in self.layers for p in (layer.m, layer.w)]  # type: ignore[misc]
        return []

    def set_masks(self, masks: list[torch.Tensor | None]) -> None:
        self.masks = [None if m is None else m.to(layer.w.device) for m, layer in zip(masks, self.layers)]
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        for layer, mask in zip(self.layers, self.masks):
            if mask is not None:
                layer.zero_where(~mask, self.optimizer_state)

    def before_step(self, step: int, update: bool = True) -> None:
        for layer, mask in zip(self.layers, self.masks):
            if mask is not None:
                layer.mask_grads(mask)

    def after_step(self, step: int) -> None:
        self.apply_masks()

    def end_epoch(self, epochs_done: int, train_acc: float) -> None:
        if self.sign_in and self._sign_in_due(epochs_done):
            self.sign_in_reset()

    def _sign_in_due(self, epochs_done: int) -> bool:
        period = max(1, round(self.sign_in_period * self.epochs))
        return epochs_done % period == 0 and epochs_done < self.epochs

    @torch.no_grad()
    def sign_in_reset(self) -> None:
        """Sign-In's reset: re-solve (m, w) from θ = m ⊙ w so that θ is unchanged and m² - w² = 1."""
        from .reparam import hyperbolic_split

        for layer in self.layers:
            m, w = hyperbolic_split(layer.theta())
            layer.m.copy_(m)  # type: ignore[union-attr]
            layer.w.copy_(w)
        self.apply_masks()

    def state_dict(self) -> dict[str, Any]:
        return {"masks": [None if m is None else m.cpu() for m in self.masks]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks = [None if m is None else m.to(layer.w.device) for m, layer in zip(state["masks"], self.layers)]
