"""STR (Kusupati et al. 2020): soft-threshold reparameterization with a learnable threshold.

Every prunable layer computes ``θ = sign(w)·relu(|w| - sigmoid(s_l))`` with a scalar ``s_l``
(initial value ``sparsity.str_s_init``) that gets the same weight decay as the weights; sparsity
emerges from training, so the target is reached through ``(weight decay, s_init)`` presets
(``configs/sparsity/str.yaml``) and the achieved sparsity is what is reported.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .method import SparsityMethod
from .reparam import register_soft_threshold


class STR(SparsityMethod):
    """Soft thresholds ``sigmoid(s_l)`` with ``s_l`` starting at ``s_init`` (a logit)."""

    def __init__(self, *, s_init: float = -3200.0, **common: Any) -> None:
        super().__init__(**common)
        self.s_init = float(s_init)

    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        self.thresholds = []
        for layer in self.layers:
            w, s = register_soft_threshold(layer.module, self.s_init)
            layer.w = w
            self.thresholds.append(s)

    def decayed_parameters(self) -> list[nn.Parameter]:
        return list(self.thresholds)

    def metrics(self) -> dict[str, float]:
        return {"str_mean_threshold_logit": sum(float(s.detach()) for s in self.thresholds) / max(1, len(self.thresholds))}
