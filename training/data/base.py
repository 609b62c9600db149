"""What every data source returns: a :class:`DataBundle` of two :class:`Loader` objects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

import torch

#: written beside the .beton files by scripts/write_ffcv.py (class names, image counts), read by data=ffcv_imagenet
META_NAME = "dataset.json"


class DataError(RuntimeError):
    """A data set cannot be found or read; the message says how to provide it."""


class Loader(Protocol):
    """Batches ``(x, y)`` already on the run's device; ``set_epoch`` fixes the order (and the
    augmentation) of the next pass, so that an epoch does not depend on what ran before it.
    ``start_batch`` > 0 makes the next pass begin at that batch of the epoch, with the same content
    as in a whole pass (a run resumed inside an epoch); later passes start at 0 again."""

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None: ...
    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...
    def __len__(self) -> int: ...


@dataclass(frozen=True)
class InputSpec:
    """How a stored image becomes the model's evaluation input, in the run's own terms: enough to
    evaluate the trained model with plain torch (written into the exported model's ``model.json``).

    An image of ``channels`` channels (1: grey, 3: RGB), its centre square of ``crop_ratio`` x the
    shorter side resized to ``size`` x ``size`` with ``resample`` (``crop_ratio`` null: used as
    stored, ``size`` x ``size``), as float pixels ``p`` in [0, 1] (``uint8 / 255``), then
    ``x = (p - mean) / std`` per channel, laid out N x C x H x W. ``mean``/``std`` null: the data
    are tensors already in the model's input space (``data=synthetic``), not images."""

    channels: int
    size: int
    mean: list[float] | None
    std: list[float] | None
    crop_ratio: float | None = None
    resample: str | None = None
    #: ``class_names[label]``, where the data name their classes
    class_names: list[str] | None = None


@dataclass
class DataBundle:
    train: Loader
    test: Loader
    num_classes: int
    in_channels: int
    image_size: int
    train_size: int  # examples in one epoch, over all ranks
    test_size: int  # examples in the evaluation set, over all ranks
    #: what the test loader feeds the model, from a stored image
    input: InputSpec
    #: the training resolution of an epoch (0-based), for data with progressive resizing
    resolution_at: Callable[[int], int] | None = None
    #: what identifies the data, part by part (``"train labels"`` -> ``"60000 uint8, sha256 ..."``),
    #: without any path: a checkpoint records it and a resume on other data is refused, while the
    #: same files moved elsewhere still resume (:func:`identity_differences`)
    identity: dict[str, str] = field(default_factory=dict)


def digest(chunks: Iterable[bytes | str]) -> str:
    """The first 16 hex digits of the SHA-256 over ``chunks`` (strings UTF-8 encoded), in order."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk.encode() if isinstance(chunk, str) else chunk)
    return hasher.hexdigest()[:16]


def identity_differences(saved: dict[str, str], current: dict[str, str]) -> list[str]:
    """The parts of two data identities that differ, as ``part: saved -> current``."""
    absent = "<absent>"
    return [f"{part}: {saved.get(part, absent)} -> {current.get(part, absent)}"
            for part in dict.fromkeys((*saved, *current)) if saved.get(part, absent) != current.get(part, absent)]


def resolve_num_classes(configured: int | None, found: int, where: str) -> int:
    """``data.num_classes``: ``null`` takes the number of classes the data has; a value must match it."""
    if configured is None or configured == found:
        return found
    raise DataError(
        f"data.num_classes={configured} does not match the {found} classes of {where}: set data.num_classes={found} "
        f"or data.num_classes=null (take it from the data)"
    )
