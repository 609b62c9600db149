"""Which tensors are prunable: the one rule, in one place.

Conv and linear weights are prunable (``θ`` below); biases, norm layers and everything else are
not. ``keep_first_dense`` / ``keep_last_dense`` exempt the first / last such layer (module order).
"""

from __future__ import annotations

from torch import nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_layers(model: nn.Module, keep_first_dense: bool = False, keep_last_dense: bool = False) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every prunable layer, in module order."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]
    if keep_first_dense and layers:
        layers = layers[1:]
    if keep_last_dense and layers:
        layers = layers[:-1]
    return layers
