"""Continuous sparsification through θ = m ⊙ w with an L2 penalty on m and w (an L1 penalty on θ
in disguise), then magnitude pruning to the target at the end of training, without fine-tuning
(as both papers do, as far as their texts and code show).

* PILoT (Jacobs & Burkholz, "Mask in the Mirror", ICLR 2025): ``m² - w² = c`` at init
  (``c = sparsity.pilot_init_constant``, the paper's β; 1 unless set); the loss
  gets ``α_k(‖m‖² + ‖w‖²)``; after epoch k, α is multiplied by δ if the training accuracy improved
  on the previous epoch's, ``‖m⊙w‖₁ ≥ K`` and ``k < T/2``, else divided by δ. **Our choices:** δ is
  derived from the run length, ``δ = G^(1/⌈T/2⌉)`` with ``G = sparsity.pilot_alpha_growth``, so
  that α can grow by the same factor G in a 10- and a 100-epoch run (a fixed δ per epoch reaches
  1.1^5 = 1.6 in 10 epochs and 1.1^50 = 117 in 100); K is ``sparsity.pilot_l1_floor`` times the
  initial ``‖θ‖₁`` (the paper does not state K: our choice, docs/methods.md §8).
* spred (Ziyin & Wang): balanced init ``m = sqrt|θ|``, ``w = sign(θ)·sqrt|θ|`` and a constant
  penalty ``α = sparsity.spred_weight_decay``.

The penalty's gradient ``2α·m`` / ``2α·w`` is added to the gradients before the optimizer step,
and it is the only decay on m and w: the optimizer's base weight decay is off for them
(:meth:`undecayed_parameters`), as in PILoT's Algorithm 1 and spred's code. Their learning rate is
``optimizer.lr`` times ``sparsity.mirror_lr_scale`` (1 unless set; ``training/optim.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .masks import global_magnitude_masks
from .method import SparsityMethod
from .schedules import pilot_next_alpha


class MirrorMethod(SparsityMethod):
    """θ = m ⊙ w under a penalty, pruned to ``target`` by magnitude at the end of training."""

    def __init__(self, *, target: float, **common: Any) -> None:
        super().__init__(**common)
        self.check_arguments(target=target)
        self.target = float(target)

    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        self.alpha = self.initial_alpha()
        self.pruned, self.pruned_mass = False, 0.0

    def initial_alpha(self) -> float:
        raise NotImplementedError

    @torch.no_grad()
    def before_step(self, step: int, update: bool = True) -> None:
        for layer in self.layers:
            for p in layer.trained:
                if p.grad is not None:
                    p.grad.add_(p.detach(), alpha=2 * self.alpha)

    def undecayed_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in layer.trained]

    def prunes_at(self, epochs_done: int) -> bool:
        return epochs_done == self.epochs

    def end_epoch(self, epochs_done: int, train_acc: float) -> None:
        if self.prunes_at(epochs_done):
            self.prune_to_target()

    @torch.no_grad()
    def prune_to_target(self) -> None:
        """Global magnitude pruning to the target; records the fraction of ‖θ‖₁ it removed."""
        thetas = self.thetas()
        masks = global_magnitude_masks(thetas, self.target)
        removed = sum(float(t.abs()[~m].sum()) for t, m in zip(thetas, masks))
        self.pruned_mass = removed / max(sum(float(t.abs().sum()) for t in thetas), 1e-30)
        for layer, mask in zip(self.layers, masks):
            layer.zero_where(~mask, self.optimizer_state)
        self.pruned = True

    def metrics(self) -> dict[str, float]:
        out = {"penalty_alpha": self.alpha}
        if self.pruned:
            out["pruned_mass_fraction"] = self.pruned_mass
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "pruned": self.pruned, "pruned_mass": self.pruned_mass}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha, self.pruned, self.pruned_mass = state["alpha"], state["pruned"], state["pruned_mass"]


class PILoT(MirrorMethod):
    """Initial penalty ``alpha`` (α₀), which may grow by ``alpha_growth`` (G) over the first half of
    training while ‖θ‖₁ stays above ``l1_floor`` (K) times its initial value; m₀² − w₀² =
    ``init_constant`` (Mask in the Mirror's β)."""

    reparameterization = "hyperbolic"
    rules = {"alpha": (lambda v: v >= 0, ">= 0 (0: no penalty, the m ⊙ w control)"), "alpha_growth": (lambda v: v >= 1, ">= 1"),
             "l1_floor": (lambda v: 0 <= v < 1, "in [0, 1) (a fraction of the initial L1 norm)"),
             "init_constant": (lambda v: v > 0, "> 0 (m₀² − w₀² at initialisation)")}

    def __init__(self, *, alpha: float, alpha_growth: float = 10.0, l1_floor: float = 0.1, init_constant: float = 1.0,
                 **mirror: Any) -> None:
        super().__init__(**mirror)
        self.check_arguments(alpha=alpha, alpha_growth=alpha_growth, l1_floor=l1_floor, init_constant=init_constant)
        if alpha is None:
            raise ValueError("alpha=None is not valid: it must be a number >= 0 (PILoT's initial penalty)")
        self.alpha_0, self.alpha_growth, self.l1_floor_fraction = float(alpha), float(alpha_growth), float(l1_floor)
        self.split_constant = float(init_constant)  # type: ignore[misc]

    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        self.previous_acc = -1.0
        self.l1_floor = self.l1_floor_fraction * sum(float(t.abs().sum()) for t in self.thetas())

    def initial_alpha(self) -> float:
        return self.alpha_0

    @property
    def delta(self) -> float:
        """δ = G^(1/⌈T/2⌉): α grows at most by G = ``alpha_growth`` over the first half."""
        return self.alpha_growth ** (1 / math.ceil(self.epochs / 2))

    def end_epoch(self, epochs_done: int, train_acc: float) -> None:
        l1 = sum(float(t.abs().sum()) for t in self.thetas())
        improved = train_acc > self.previous_acc
        self.previous_acc = train_acc
        self.alpha = pilot_next_alpha(self.alpha, improved, l1, self.l1_floor, epochs_done - 1, self.epochs, self.delta)
        super().end_epoch(epochs_done, train_acc)

    def state_dict(self) -> dict[str, Any]:
        return dict(super().state_dict(), previous_acc=self.previous_acc, l1_floor=self.l1_floor)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.previous_acc, self.l1_floor = state["previous_acc"], state["l1_floor"]


class Spred(MirrorMethod):
    """The constant penalty ``weight_decay`` (α) on m and w."""

    reparameterization = "balanced"
    rules = {"weight_decay": (lambda v: v >= 0, ">= 0")}

    def __init__(self, *, weight_decay: float, **mirror: Any) -> None:
        super().__init__(**mirror)
        self.check_arguments(weight_decay=weight_decay)
        if weight_decay is None:
            raise ValueError("weight_decay=None is not valid: it must be a number >= 0 (spred's penalty)")
        self.weight_decay = float(weight_decay)

    def initial_alpha(self) -> float:
        return self.weight_decay
