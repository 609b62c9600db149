"""The one sentence a run prints when an allocation fails (host or GPU memory)."""

from __future__ import annotations

import errno

import torch
from omegaconf import DictConfig


def out_of_memory(error: BaseException, cfg: DictConfig) -> str | None:
    """One sentence for an allocation that failed (host or GPU memory), naming what to lower; None
    for any other error."""
    text = str(error)
    gpu = isinstance(error, torch.OutOfMemoryError) or "CUDA out of memory" in text
    host = isinstance(error, MemoryError) or (isinstance(error, OSError) and error.errno == errno.ENOMEM) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text or "Cannot allocate memory" in text))
    if not (gpu or host):
        return None
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return (f"out of {'GPU' if gpu else 'host'} memory ({type(error).__name__}: {first[:200]}): lower the per-process batch size "
            f"trainer.batch_size={cfg.trainer.batch_size} (or trainer.eval_batch_size={cfg.trainer.eval_batch_size} if it failed in "
            f"evaluation), or data.workers={cfg.data.get('workers', 0)}; the model and the data set in memory must fit as well")
