"""Random pruning at initialization (PaI): a fixed random mask with ERK or uniform layer densities."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .distributions import DISTRIBUTIONS, keep_counts, layer_densities
from .masks import random_mask
from .method import MaskedMethod


def broadcast_masks(masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Rank 0's masks on every data-parallel rank (a no-op without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return masks
    out = []
    for mask in masks:
        as_bytes = mask.to(torch.uint8)
        dist.broadcast(as_bytes, src=0)
        out.append(as_bytes.bool())
    return out


class RandomPaI(MaskedMethod):
    """Masks drawn once with the layer densities of ``distribution`` (erk, uniform) from ``seed``."""

    rules = {"distribution": (lambda v: v in DISTRIBUTIONS, f"one of {', '.join(DISTRIBUTIONS)}")}

    def __init__(self, *, distribution: str = "erk", seed: int = 0, **masked: Any) -> None:
        super().__init__(**masked)
        self.check_arguments(distribution=distribution)
        self.distribution, self.seed = distribution, int(seed)

    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        shapes = [layer.shape for layer in self.layers]
        densities = layer_densities(self.distribution, shapes, self.target)
        generator = torch.Generator().manual_seed(self.seed)
        masks = [random_mask(s, n, generator) for s, n in zip(shapes, keep_counts(shapes, densities))]
        device = self.layers[0].w.device if self.layers else torch.device("cpu")
        self.set_masks(broadcast_masks([m.to(device) for m in masks]))
