r"""Sharpness-Aware Minimization (Foret et al., 2021) as a wrapper of any optimizer.

One SAM step, with one global gradient norm over all parameters:

.. math::

    e = \rho\,\frac{g}{\lVert g\rVert_2}
    \quad\text{(adaptive: } e = \rho\,\frac{w^2 \odot g}{\lVert |w| \odot g\rVert_2}\text{)},
    \qquad g' = \nabla f(w + e), \qquad w \leftarrow \mathrm{OptimizerStep}(w, g').

Two ways to use it::

    # (a) two-step API
    loss_fn(model(x), y).backward()
    sam.first_step(zero_grad=True)           # w -> w + e
    loss_fn(model(x), y).backward()
    sam.second_step(zero_grad=True)          # w restored exactly, base step with g'

    # (b) closure API: the first backward has been done, the closure does forward + backward
    loss_fn(model(x), y).backward()
    sam.step(closure)

Under DDP, the *first* pass (forward and backward) must run inside ``model.no_sync()`` so that
the perturbation uses the local gradient and only the second pass is all-reduced. With
BatchNorm, update the running statistics in one pass only: keep the first pass's, e.g. by
setting every BN layer's ``momentum`` to 0 for the second pass (this repository's trainer does
this: ``training.loop.frozen_bn_statistics``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .wrapper import OptimizerWrapper, require_numbers


class SAM(OptimizerWrapper):
    """Wrap ``optimizer``; ``rho`` may be overridden per param group with a ``rho`` key."""

    state_key = "sam"

    def __init__(
        self, optimizer: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False
    ) -> None:
        self.check_arguments(rho=rho)
        super().__init__(optimizer)
        self.rho = float(rho)
        self.adaptive = bool(adaptive)
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    @staticmethod
    def check_arguments(rho: float = 0.05) -> None:
        """Refuse a radius SAM cannot use: a :class:`ValueError` that opens with ``rho=value``."""
        require_numbers(rho=rho)
        if not rho >= 0:
            raise ValueError(f"rho={rho!r} is not valid: it must be >= 0")

    def settings(self) -> dict[str, Any]:
        return {"rho": self.rho, "adaptive": self.adaptive}

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move every parameter with a gradient to ``w + e`` (remembering ``w``)."""
        if self._saved:
            raise RuntimeError("SAM.first_step called twice without second_step in between")
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return
        scaled = [
            (p.abs() * p.grad if self.adaptive else p.grad) for p in params
        ]
        grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(scaled)))
        for group in self.param_groups:
            scale = group.get("rho", self.rho) / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = p.grad * scale
                if self.adaptive:
                    e.mul_(p * p)
                self._saved.append((p, p.detach().clone()))
                p.add_(e)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def unperturb(self) -> None:
        """Put the parameters back to the (bit-exact) point before :meth:`first_step`."""
        for p, saved in self._saved:
            p.copy_(saved)
        self._saved = []

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w`` and take the base optimizer's step with the gradient at ``w + e``."""
        self.unperturb()
        self.base_optimizer.step()
        self._note_step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Full SAM step; ``closure`` must run forward and backward at the current weights
        (the gradients at ``w`` must already be in ``.grad``). Returns the closure's loss."""
        if closure is None:
            raise ValueError(
                "SAM.step needs a closure that runs forward and backward; "
                "or call first_step() and second_step() yourself"
            )
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss
