r"""RiGL (Evci et al. 2020): drop the smallest |θ|, grow the largest dense |∂L/∂θ|.

Every ``ΔT`` steps from step 0 until ``T_end`` (a fraction of training), per layer with ``n`` active weights:
drop the ``k = floor(f(t)·n)`` active weights of smallest magnitude, then grow the ``k`` inactive
ones (a just-dropped weight included) with the largest dense-gradient magnitude, where
``f(t) = f₀/2·(1 + cos(π t / T_end))``. Grown weights and their momentum start at exactly 0, and
the active count of every layer is preserved. Under DDP the gradient is the all-reduced one, so
every rank takes the same decision. **Our choice:** on an update step the weights also take their
optimizer step (RiGL's code skips it there: 1 step in ``ΔT``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .random_pai import RandomPaI
from .schedules import rigl_drop_fraction


@torch.no_grad()
def drop_and_grow(theta: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, fraction: float) -> tuple[torch.Tensor, int]:
    """The new mask of one layer and the number of connections swapped."""
    flat_mask = mask.flatten()
    n_active = int(flat_mask.sum())
    k = math.floor(fraction * n_active)
    if k == 0 or n_active == flat_mask.numel():  # a dense layer (ERK can make some) stays dense
        return mask, 0
    drop_score = torch.where(flat_mask, theta.abs().flatten(), torch.full_like(theta.flatten(), float("inf")))
    dropped = torch.topk(drop_score, k, largest=False).indices
    kept = flat_mask.clone()
    kept[dropped] = False
    grow_score = torch.where(kept, torch.full_like(grad.flatten(), -float("inf")), grad.abs().flatten())
    grown = torch.topk(grow_score, k).indices
    new = kept.clone()
    new[grown] = True
    return new.view(mask.shape), k


class RigL(RandomPaI):
    """Random PaI's first masks, then a drop-and-grow update every ``delta_t`` steps until ``t_end``
    (a fraction of training), dropping ``drop_fraction`` (f₀) of the active weights at first."""

    rules = {"delta_t": (lambda v: v >= 1, ">= 1"), "drop_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
             "t_end": (lambda v: 0 < v <= 1, "in (0, 1]")}

    def __init__(self, *, delta_t: int = 100, drop_fraction: float = 0.3, t_end: float = 0.75, **random: Any) -> None:
        super().__init__(**random)
        self.check_arguments(delta_t=delta_t, drop_fraction=drop_fraction, t_end=t_end)
        self.delta_t, self.drop_fraction, self.t_end = int(delta_t), float(drop_fraction), float(t_end)
        self.regrown = 0

    def _update_due(self, step: int) -> bool:
        t_end = int(self.t_end * self.total_steps)
        return step % self.delta_t == 0 and step < t_end  # step 0 included, as in RiGL's code

    @torch.no_grad()
    def before_step(self, step: int, update: bool = True) -> None:
        if update and self._update_due(step):
            fraction = rigl_drop_fraction(step, int(self.t_end * self.total_steps), self.drop_fraction)
            new_masks = []
            for layer, mask in zip(self.layers, self.masks):
                grad = layer.theta_grad()
                if mask is None or grad is None:
                    new_masks.append(mask)
                    continue
                new, swapped = drop_and_grow(layer.theta(), grad, mask, fraction)
                grown = new & ~mask
                layer.zero_where(grown, self.optimizer_state)  # grown weights and momentum start at 0
                self.regrown += swapped
                new_masks.append(new)
            self.set_masks(new_masks)
        super().before_step(step, update)

    def metrics(self) -> dict[str, float]:
        regrown, self.regrown = self.regrown, 0
        return {"rigl_regrown": regrown}

    def state_dict(self) -> dict[str, Any]:
        return dict(super().state_dict(), regrown=self.regrown)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.regrown = state["regrown"]
