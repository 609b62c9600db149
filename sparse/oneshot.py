"""One-shot global magnitude pruning of a trained model, without fine-tuning (the poster's
prunability table)."""

from __future__ import annotations

import torch
from torch import nn

from .masks import global_magnitude_masks
from .prunable import prunable_layers


@torch.no_grad()
def prune_global_magnitude(model: nn.Module, sparsity: float) -> float:
    """Zero the smallest-|θ| prunable weights of ``model`` (one threshold); return the sparsity."""
    weights = [m.weight for _, m in prunable_layers(model)]
    for weight, mask in zip(weights, global_magnitude_masks(list(weights), sparsity)):
        weight.masked_fill_(~mask, 0.0)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)
