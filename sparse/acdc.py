"""AC/DC (Peste et al. 2021): alternating compressed (sparse) and decompressed (dense) phases.

The phase timeline (``sparse.schedules.acdc_phases``) is the 100-epoch ResNet-50 recipe scaled to
the run's length in optimizer steps. At the start of each compressed phase the weights are pruned
straight to the target by one global magnitude threshold over all prunable layers; at the start of
a decompressed phase the mask is lifted (the pruned weights come back as zeros) and the momentum of
every parameter is reset (as AC/DC's code does: BatchNorm and biases included).
"""

from __future__ import annotations

import torch

from .masks import global_magnitude_masks
from .method import MaskedMethod
from .schedules import acdc_compressed


@torch.no_grad()
def reset_momentum(optimizer_state: dict) -> None:
    """Zero the per-element buffers (momentum, Adam moments) of every parameter's optimizer state."""
    for state in optimizer_state.values():
        for value in state.values():
            if torch.is_tensor(value) and value.ndim > 0:
                value.zero_()


class ACDC(MaskedMethod):
    def before_step(self, step: int, update: bool = True) -> None:
        compressed = acdc_compressed(step, self.total_steps) if update else any(m is not None for m in self.masks)
        is_compressed_now = any(m is not None for m in self.masks)
        if compressed and not is_compressed_now:
            self.set_masks(global_magnitude_masks(self.thetas(), self.target))
        elif not compressed and is_compressed_now:
            self.masks = [None] * len(self.layers)
            reset_momentum(self.optimizer_state)
        super().before_step(step, update)

    def metrics(self) -> dict[str, float]:
        return {"acdc_compressed": float(any(m is not None for m in self.masks))}
