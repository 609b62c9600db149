r"""Continuous sparsification through θ = m ⊙ w with an L2 penalty on m and w (an L1 penalty on θ
in disguise), then magnitude pruning to the target at the end of training.

* PILoT (Jacobs & Burkholz, "Mask in the Mirror", ICLR 2025): ``m² - w² = 1`` at init; the loss
  gets ``α_k(‖m‖² + ‖w‖²)``; after each epoch α is multiplied by δ if the training accuracy
  improved, ``‖m⊙w‖₁ ≥ K`` and we are in the first half of training, else divided by δ. K is
  ``sparsity.pilot_l1_floor`` times the initial ``‖θ‖₁`` (**our choice**: the value of K is not in
  SPEC.md).
* spred (Ziyin & Wang): balanced init ``m = sqrt|θ|``, ``w = sign(θ)·sqrt|θ|`` and a constant
  penalty ``α = sparsity.spred_weight_decay``.

The penalty's gradient ``2α·m`` / ``2α·w`` is added to the gradients before the optimizer step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sparse.masks import global_magnitude_masks
from sparse.method import SparsityMethod
from sparse.schedules import pilot_next_alpha


class MirrorMethod(SparsityMethod):
    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        self.alpha = self.initial_alpha()
        self.pruned = False

    def initial_alpha(self) -> float:
        raise NotImplementedError

    @torch.no_grad()
    def before_step(self, step: int, update: bool = True) -> None:
        for layer in self.layers:
            for p in layer.trained:
                if p.grad is not None:
                    p.grad.add_(p.detach(), alpha=2 * self.alpha)

    def end_epoch(self, epochs_done: int, train_acc: float) -> None:
        if epochs_done == self.epochs:
            self.prune_to_target()

    @torch.no_grad()
    def prune_to_target(self) -> None:
        masks = global_magnitude_masks(self.thetas(), self.cfg.target)
        for layer, mask in zip(self.layers, masks):
            layer.zero_where(~mask, self.optimizer_state)
        self.pruned = True

    def metrics(self) -> dict[str, float]:
        return {"penalty_alpha": self.alpha}

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "pruned": self.pruned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha, self.pruned = state["alpha"], state["pruned"]


class PILoT(MirrorMethod):
    reparameterization = "hyperbolic"

    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        self.best_acc = -1.0
        self.l1_floor = self.cfg.pilot_l1_floor * sum(float(t.abs().sum()) for t in self.thetas())

    def initial_alpha(self) -> float:
        return float(self.cfg.pilot_alpha)

    def end_epoch(self, epochs_done: int, train_acc: float) -> None:
        l1 = sum(float(t.abs().sum()) for t in self.thetas())
        improved = train_acc > self.best_acc
        self.best_acc = max(self.best_acc, train_acc)
        self.alpha = pilot_next_alpha(self.alpha, improved, l1, self.l1_floor, epochs_done - 1, self.epochs, self.cfg.pilot_delta)
        super().end_epoch(epochs_done, train_acc)

    def state_dict(self) -> dict[str, Any]:
        return dict(super().state_dict(), best_acc=self.best_acc, l1_floor=self.l1_floor)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best_acc, self.l1_floor = state["best_acc"], state["l1_floor"]


class Spred(MirrorMethod):
    reparameterization = "balanced"

    def initial_alpha(self) -> float:
        return float(self.cfg.spred_weight_decay)
