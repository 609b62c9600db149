"""Plain numpy re-statements of the update rules (docs/methods.md §1, §2), used as independent references."""

from __future__ import annotations

import numpy as np


def hyperbolic_ref(w_half, grad, lr, alpha, beta, clamp=5.0, sign_source=None):
    """θ_{k+1} = θ_{k+½}·exp(clip(-η(α·sign·g + β), -c, c)), factor 1 where g is not finite."""
    w_half = np.asarray(w_half, dtype=np.float64)
    grad = np.asarray(grad, dtype=np.float64)
    sign = np.sign(w_half if sign_source is None else np.asarray(sign_source, dtype=np.float64))
    out = np.empty_like(w_half)
    for i in np.ndindex(w_half.shape):
        if not np.isfinite(grad[i]):
            out[i] = w_half[i]
            continue
        exponent = -lr * (alpha * sign[i] * grad[i] + beta)
        exponent = min(max(exponent, -clamp), clamp)
        out[i] = w_half[i] * np.exp(exponent)
    return out


class SgdRef:
    """torch.optim.SGD(momentum, weight_decay, dampening=0, nesterov=False) written out."""

    def __init__(self, momentum: float, weight_decay: float):
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: dict[int, np.ndarray] = {}

    def step(self, key: int, w, grad, lr):
        d = np.asarray(grad, np.float64) + self.weight_decay * w
        if key in self.buffers:
            self.buffers[key] = self.momentum * self.buffers[key] + d
        else:
            self.buffers[key] = d
        return w - lr * self.buffers[key]
