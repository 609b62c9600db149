"""Cheap per-step metrics of the weights: sign flips and density.

Both return device tensors and never synchronise with the host until the numbers are read.
"""

from __future__ import annotations

from typing import Iterable

import torch

NamedTensors = Iterable[tuple[str, torch.Tensor]]


class SignFlips:
    """Count, per tensor, the weights whose sign changed (+ to - or - to +) between calls.

    A weight that becomes or leaves exactly zero is not a flip. Keeps one ``int8`` sign per
    tracked weight. Typical use: ``flips.update()`` after every optimizer step, and
    ``flips.read()`` once an epoch (the only host synchronisation).
    """

    def __init__(self, named_tensors: NamedTensors) -> None:
        named = list(named_tensors)
        self.names = [name for name, _ in named]
        self.tensors = [t for _, t in named]
        self._signs = [self._sign(t) for t in self.tensors]
        device = self.tensors[0].device if self.tensors else torch.device("cpu")
        self._counts = torch.zeros(len(self.tensors), dtype=torch.int64, device=device)

    @staticmethod
    @torch.no_grad()
    def _sign(t: torch.Tensor) -> torch.Tensor:
        return torch.sign(t.detach()).to(torch.int8)

    @torch.no_grad()
    def update(self) -> torch.Tensor:
        """Add the flips since the last call to the running counts; return them per tensor."""
        step_counts = []
        for i, t in enumerate(self.tensors):
            now = self._sign(t)
            step_counts.append(((now * self._signs[i]) < 0).sum())
            self._signs[i] = now
        counts = torch.stack(step_counts) if step_counts else self._counts.new_zeros(0)
        self._counts += counts
        return counts

    def read(self, reset: bool = True) -> dict[str, int]:
        """The counts accumulated since the last reset: per tensor, and ``"total"``."""
        values = self._counts.tolist()
        if reset:
            self._counts.zero_()
        result = dict(zip(self.names, values))
        result["total"] = sum(values)
        return result

    @torch.no_grad()
    def rebase(self) -> None:
        """Take the current signs as the reference without counting flips (after a change that is
        not a training step, e.g. a prune or a reparameterization reset)."""
        self._signs = [self._sign(t) for t in self.tensors]

    def state_dict(self) -> dict[str, object]:
        """The running counts. The reference signs are not saved: after :meth:`update` or
        :meth:`rebase` they are the tensors' own signs, which :meth:`load_state_dict` recomputes."""
        return {"counts": self._counts.clone()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.rebase()
        self._counts = state["counts"].to(self._counts.device)  # type: ignore[attr-defined]


@torch.no_grad()
def density(named_tensors: NamedTensors) -> dict[str, float]:
    """Fraction of non-zero entries, per tensor and ``"global"`` (over all given tensors)."""
    named = list(named_tensors)
    if not named:
        return {"global": 1.0}
    nonzero = torch.stack([torch.count_nonzero(t) for _, t in named]).tolist()
    sizes = [t.numel() for _, t in named]
    result = {name: nz / n for (name, _), nz, n in zip(named, nonzero, sizes)}
    result["global"] = sum(nonzero) / sum(sizes)
    return result
