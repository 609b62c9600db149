r"""Reparameterizations of a prunable weight θ, registered with ``torch.nn.utils.parametrize``.

* :class:`Product`: ``θ = m ⊙ w`` (Sign-In, PILoT, spred). The trained tensors are ``m`` and ``w``
  (``module.parametrizations.weight.original0`` / ``original1``); ``module.weight`` is θ.
  Initialisations from a given θ:

  - ``"hyperbolic"`` (Sign-In, PILoT): ``m = sqrt((c + sqrt(c² + 4θ²))/2)``, ``w = θ/m``, so that
    ``m² - w² = c`` and ``m ⊙ w = θ``; ``c = 1`` for Sign-In, ``sparsity.pilot_init_constant`` for
    PILoT (Mask in the Mirror's β). Gradient flow on (m, w) moves θ with the rate
    ``m² + w² = sqrt(c² + 4θ²)``: ``c`` is the rate of the weights near zero;
  - ``"balanced"`` (spred): ``m = sqrt|θ|``, ``w = sign(θ)·sqrt|θ|``.
* :class:`SoftThreshold` (STR): ``θ = sign(w)·relu(|w| - sigmoid(s))`` with a learnable scalar ``s``.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn.utils import parametrize


def hyperbolic_split(theta: torch.Tensor, constant: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, w) with ``m ⊙ w = θ`` and ``m² - w² = constant`` (> 0)."""
    m = torch.sqrt((constant + torch.sqrt(constant * constant + 4 * theta * theta)) / 2)
    return m, theta / m


def balanced_split(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    root = theta.abs().sqrt()
    return root, torch.sign(theta) * root


SPLITS = {"hyperbolic": hyperbolic_split, "balanced": balanced_split}


class Product(nn.Module):
    def __init__(self, init: str, constant: float = 1.0) -> None:
        super().__init__()
        self.split = functools.partial(hyperbolic_split, constant=constant) if init == "hyperbolic" else SPLITS[init]

    def forward(self, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return m * w

    def right_inverse(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(theta)


class SoftThreshold(nn.Module):
    def __init__(self, s_init: float) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.tensor(float(s_init)))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return torch.sign(w) * torch.relu(w.abs() - torch.sigmoid(self.s))


def register_product(module: nn.Module, init: str, constant: float = 1.0) -> tuple[nn.Parameter, nn.Parameter]:
    """Make ``module.weight`` = m ⊙ w (``constant``: m² - w² of the hyperbolic split); returns the trained ``(m, w)``."""
    parametrize.register_parametrization(module, "weight", Product(init, constant), unsafe=True)
    originals = module.parametrizations.weight
    return originals.original0, originals.original1


def register_soft_threshold(module: nn.Module, s_init: float) -> tuple[nn.Parameter, nn.Parameter]:
    """Make ``module.weight`` STR's soft-thresholded weight; returns ``(w, s)``."""
    threshold = SoftThreshold(s_init)
    parametrize.register_parametrization(module, "weight", threshold)
    return module.parametrizations.weight.original, threshold.s
