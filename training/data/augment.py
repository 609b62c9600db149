"""The ImageNet training recipe's image transforms, shared by the FFCV and the ImageFolder loaders.

* **Progressive resizing** (FFCV's ResNet recipe): the training resolution of epoch ``e``
  (0-based) is ``min_res`` up to ``start_ramp_epoch``, ``max_res`` from ``end_ramp_epoch`` on, and
  in between the linear interpolation rounded to a multiple of 32.
* **Random-resized crop + horizontal flip** (scale (0.08, 1), aspect ratio (3/4, 4/3), ten tries,
  then a centre crop: the torchvision/FFCV algorithm). Its random numbers are not drawn from a
  stateful generator but *computed* from ``(seed, epoch, sample index)`` with the SplitMix64 hash,
  so a crop is the same whichever worker or thread decodes the image, in whatever order, before or
  after a resume, and on any number of ranks. ``training/data/ffcv_loader.py`` holds the same
  computation compiled with numba (tests check the two agree).
* **Validation**: a centre square of ``crop_ratio`` (224/256) of the shorter side, resized to
  ``val_res``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.data.base import InputSpec

MASK64 = (1 << 64) - 1
GOLDEN64 = 0x9E3779B97F4A7C15
SCALE = (0.08, 1.0)
LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))
CROP_TRIES = 10
FLIP_DRAW = 4 * CROP_TRIES  # the index of the draw that decides the flip


def splitmix64(x: int) -> int:
    """SplitMix64's finaliser: a bijective 64-bit mix (Steele, Lea, Flood 2014)."""
    x = (x + GOLDEN64) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def epoch_key(seed: int, epoch: int) -> int:
    """The key of one epoch's augmentation; every image's draws derive from it and its index."""
    return splitmix64(splitmix64(seed & MASK64) ^ (epoch & MASK64))


def uniform(key: int, index: int, draw: int) -> float:
    """The ``draw``-th uniform number in [0, 1) of sample ``index`` under ``key``."""
    h = splitmix64(splitmix64(key ^ splitmix64(index & MASK64)) + draw)
    return (h >> 11) * (1.0 / (1 << 53))


def random_resized_crop(key: int, index: int, height: int, width: int) -> tuple[int, int, int, int, bool]:
    """``(top, left, crop height, crop width, flip)`` of sample ``index`` (an image of
    ``height`` × ``width`` pixels) under the epoch ``key``."""
    area = float(height * width)
    for t in range(CROP_TRIES):
        target_area = area * (SCALE[0] + (SCALE[1] - SCALE[0]) * uniform(key, index, 4 * t))
        aspect = math.exp(LOG_RATIO[0] + (LOG_RATIO[1] - LOG_RATIO[0]) * uniform(key, index, 4 * t + 1))
        w = int(math.sqrt(target_area * aspect) + 0.5)
        h = int(math.sqrt(target_area / aspect) + 0.5)
        if 0 < w <= width and 0 < h <= height:
            top = int(uniform(key, index, 4 * t + 2) * (height - h + 1))
            left = int(uniform(key, index, 4 * t + 3) * (width - w + 1))
            return top, left, h, w, uniform(key, index, FLIP_DRAW) < 0.5
    h, w = fallback_crop(height, width)
    return (height - h) // 2, (width - w) // 2, h, w, uniform(key, index, FLIP_DRAW) < 0.5


def fallback_crop(height: int, width: int) -> tuple[int, int]:
    """The centre crop used when ten tries found no box: the whole image clipped to the ratio range."""
    in_ratio = width / height
    if in_ratio < 3 / 4:
        return int(width / (3 / 4) + 0.5), width
    if in_ratio > 4 / 3:
        return height, int(height * (4 / 3) + 0.5)
    return height, width


def center_crop(height: int, width: int, ratio: float) -> tuple[int, int, int, int]:
    """``(top, left, side, side)``: the centre square of ``ratio`` × the shorter side."""
    side = int(ratio * min(height, width))
    return (height - side) // 2, (width - side) // 2, side, side


@dataclass(frozen=True)
class ResolutionSchedule:
    """FFCV's progressive resizing: ``min_res`` → ``max_res`` between two epochs."""

    min_res: int
    max_res: int
    start_ramp_epoch: int
    end_ramp_epoch: int

    def __call__(self, epoch: int) -> int:
        if epoch <= self.start_ramp_epoch:
            return self.min_res
        if epoch >= self.end_ramp_epoch:
            return self.max_res
        fraction = (epoch - self.start_ramp_epoch) / (self.end_ramp_epoch - self.start_ramp_epoch)
        res = self.min_res + fraction * (self.max_res - self.min_res)
        return min(self.max_res, max(self.min_res, int(round(res / 32)) * 32))


def validation_input(cfg, resample: str, class_names: list[str] | None) -> InputSpec:
    """What the validation transform makes of a stored image (``data.val_res``, ``data.val_crop_ratio``,
    ``data.mean``/``data.std``), as the exported model records it; ``resample`` names the loader's filter."""
    from training.data.base import InputSpec

    return InputSpec(channels=3, size=cfg.val_res, mean=list(cfg.mean), std=list(cfg.std), crop_ratio=cfg.val_crop_ratio,
                     resample=resample, class_names=class_names)


def schedule_from(cfg) -> ResolutionSchedule:
    return ResolutionSchedule(cfg.min_res, cfg.max_res, cfg.start_ramp_epoch, cfg.end_ramp_epoch)


class Normalize:
    """uint8 images (N, 3, H, W) → float32 ``(x/255 - mean) / std`` on their device, keeping the
    memory format (channels_last stays channels_last). ``mean``/``std`` are per channel in [0, 1]
    units (``data.mean``, ``data.std``)."""

    def __init__(self, mean, std) -> None:
        import torch

        self.scale = (1.0 / (255.0 * torch.tensor(list(std), dtype=torch.float32))).view(1, -1, 1, 1)
        self.shift = (torch.tensor(list(mean), dtype=torch.float32) / torch.tensor(list(std), dtype=torch.float32)).view(1, -1, 1, 1)

    def __call__(self, images):
        if self.scale.device != images.device:
            self.scale, self.shift = self.scale.to(images.device), self.shift.to(images.device)
        return images.float().mul_(self.scale).sub_(self.shift)
