"""Building masks with exact counts: random, per-layer magnitude and global magnitude."""

from __future__ import annotations

import torch


def random_mask(shape: torch.Size, n_keep: int, generator: torch.Generator) -> torch.Tensor:
    """A boolean mask with exactly ``n_keep`` True entries at uniformly random positions."""
    numel = int(torch.Size(shape).numel())
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[torch.randperm(numel, generator=generator)[:n_keep]] = True
    return mask.view(shape)


def magnitude_mask(weight: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Keep the ``n_keep`` entries of largest magnitude (exact count)."""
    mask = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
    mask[torch.topk(weight.detach().abs().flatten(), n_keep, sorted=False).indices] = True
    return mask.view(weight.shape)


def global_magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """One magnitude threshold over all ``weights``: keep the ``floor((1-s)·N)`` largest |θ|."""
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    n_keep = int((1.0 - sparsity) * flat.numel() + 1e-9)
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[torch.topk(flat, n_keep, sorted=False).indices] = True
    return [m.view(w.shape) for m, w in zip(keep.split([w.numel() for w in weights]), weights)]
