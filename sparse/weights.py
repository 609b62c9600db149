"""One prunable layer's weight θ as the sparsity methods see it, stored plainly or as m ⊙ w.

It answers the questions every method asks — what is θ, what is ∂L/∂θ, which trained tensors must
be zero (with their optimizer state) where θ is pruned — so that random/AC/DC/RiGL work the same
with and without Sign-In.
"""

from __future__ import annotations

import torch
from torch import nn


class PrunableWeight:
    def __init__(self, name: str, module: nn.Module) -> None:
        self.name, self.module = name, module
        self.m: nn.Parameter | None = None  # set when θ = m ⊙ w
        self.w: nn.Parameter = module.weight  # the trained tensor that carries θ's zeros

    def use_product(self, m: nn.Parameter, w: nn.Parameter) -> None:
        self.m, self.w = m, w

    @property
    def shape(self) -> torch.Size:
        return self.w.shape

    @property
    def trained(self) -> list[nn.Parameter]:
        return [self.w] if self.m is None else [self.m, self.w]

    @torch.no_grad()
    def theta(self) -> torch.Tensor:
        return self.w.detach() if self.m is None else self.m.detach() * self.w.detach()

    @torch.no_grad()
    def theta_grad(self) -> torch.Tensor | None:
        """∂L/∂θ: ``w.grad`` for a plain weight; ``w.grad / m`` for θ = m ⊙ w (∂L/∂w = ∂L/∂θ · m)."""
        if self.w.grad is None:
            return None
        return self.w.grad if self.m is None else self.w.grad / self.m.detach()

    @torch.no_grad()
    def mask_grads(self, keep: torch.Tensor) -> None:
        for p in self.trained:
            if p.grad is not None:
                p.grad.mul_(keep)

    @torch.no_grad()
    def zero_where(self, pruned: torch.Tensor, optimizer_state: dict) -> None:
        """Make θ exactly 0 at ``pruned`` (w = 0, and m = 1 so that m² - w² = 1 still holds),
        and zero every optimizer buffer of the trained tensors there (momentum, Adam moments)."""
        self.w.masked_fill_(pruned, 0.0)
        if self.m is not None:
            self.m.masked_fill_(pruned, 1.0)
        for buffer in self._state_buffers(optimizer_state):
            buffer.masked_fill_(pruned, 0.0)

    def _state_buffers(self, optimizer_state: dict) -> list[torch.Tensor]:
        """The per-element optimizer buffers of the trained tensors (momentum, Adam moments)."""
        return [
            value
            for p in self.trained
            for value in optimizer_state.get(p, {}).values()
            if torch.is_tensor(value) and value.shape == p.shape
        ]
