"""One-shot global magnitude pruning of a trained model, without fine-tuning (the poster's
prunability table), and the BatchNorm recalibration that tells whether a pruned network lost its
weights' function or only its BatchNorm statistics."""

from __future__ import annotations

import itertools
from typing import Iterable

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


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def recalibrate_batch_norm(model: nn.Module, batches: Iterable, count: int) -> None:
    """Replace every BatchNorm layer's running mean and variance by their averages over the first
    ``count`` batches of ``batches`` (``(inputs, labels)`` pairs), seen by the model as it is now
    (e.g. after pruning): the running statistics are reset and accumulated with equal weight per
    batch (``momentum=None``), as ``torch.optim.swa_utils.update_bn`` does for averaged weights.
    The model is left in eval mode; its weights are not changed."""
    with torch.no_grad():
        torch.optim.swa_utils.update_bn(itertools.islice(batches, count), model)
    model.eval()
