"""Data sources behind one interface: :func:`build_data` returns a :class:`DataBundle`.

One module per source: in-memory tensors (``tensors``: Fashion-MNIST, synthetic), an ImageFolder
tree decoded with PIL (``imagefolder``), FFCV ``.beton`` files (``ffcv_loader``; imported only
when used, so the rest works without FFCV). The two image sources share ``augment``.
"""

from __future__ import annotations

from typing import Callable

import torch
from omegaconf import DictConfig

from training.data.base import DataBundle, DataError, Loader
from training.data.tensors import TensorLoader, build_tensor_data, fashion_mnist_dir, load_fashion_mnist

__all__ = ["DATASETS", "DataBundle", "DataError", "Loader", "TensorLoader", "build_data", "fashion_mnist_dir", "load_fashion_mnist"]


def _tensors(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int, world_size: int,
             device: torch.device) -> DataBundle:
    return build_tensor_data(cfg, batch_size, eval_batch_size, seed, rank, world_size)


def _imagefolder(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int, world_size: int,
                 device: torch.device) -> DataBundle:
    from training.data.imagefolder import build_imagefolder_data

    return build_imagefolder_data(cfg, batch_size, eval_batch_size, seed, rank, world_size, device)


def _ffcv(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int, world_size: int,
          device: torch.device) -> DataBundle:
    try:
        from training.data.ffcv_loader import build_ffcv_data
    except ImportError as error:
        raise DataError(
            f"data=ffcv_imagenet needs FFCV ({error}). Install it with `make setup` (or apt-get install "
            f"libopencv-dev libturbojpeg0-dev, then pip install -e \".[ffcv]\"), or use data=imagefolder."
        ) from error
    return build_ffcv_data(cfg, batch_size, eval_batch_size, seed, rank, world_size, device)


#: The data-set registry: ``data.name`` -> builder of the train and test loaders.
DATASETS: dict[str, Callable[..., DataBundle]] = {
    "fashion_mnist": _tensors,
    "synthetic": _tensors,
    "imagefolder": _imagefolder,
    "ffcv_imagenet": _ffcv,
}


def build_data(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
               device: torch.device = torch.device("cpu")) -> DataBundle:
    """The train and test loaders for ``cfg`` (the ``data`` config group)."""
    if cfg.name not in DATASETS:
        raise DataError(f"data.name={cfg.name!r} is not valid; allowed values: {', '.join(DATASETS)}")
    return DATASETS[cfg.name](cfg, batch_size, eval_batch_size, seed, rank, world_size, device)
