"""An ImageFolder tree (``data=imagefolder``): ``root/train/<class>/*.JPEG`` and
``root/val/<class>/*.JPEG``, decoded with PIL in DataLoader workers.

The fallback for users without FFCV, with FFCV's recipe (``training/data/augment.py``): the same
crop boxes and flips for the same ``(seed, epoch, image index)``, the same progressive resizing,
validation crop and normalisation. Images are resampled with PIL's antialiased bilinear filter
(FFCV: OpenCV's INTER_AREA) from the original JPEGs (FFCV: from the stored copy, at most
``--max-side`` pixels, half of them re-encoded at JPEG quality 90), so the pixels differ slightly.
The sampler hands each worker ``(index, epoch)`` pairs, so the augmentation never depends on the
workers' random state and a resumed run sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from training.data.augment import (
    Normalize, ResolutionSchedule, center_crop, epoch_key, random_resized_crop, schedule_from, validation_input,
)
from training.data.base import DataBundle, DataError, digest, resolve_num_classes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def scan_split(directory: Path, classes: list[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """The classes (sorted sub-folder names) and ``(path, label)`` of every image under ``directory``.

    Raises :class:`DataError` for a missing or empty folder, a class folder without images, and
    (with ``classes`` given) class folders that differ from ``classes``.
    """
    if not directory.is_dir():
        raise DataError(f"{directory} does not exist or is not a folder (expected <root>/{directory.name}/<class>/<images>)")
    found = sorted(p.name for p in directory.iterdir() if p.is_dir())
    if not found:
        raise DataError(f"{directory} has no class folders (expected {directory}/<class>/<images>)")
    if classes is not None and found != classes:
        extra, lacking = sorted(set(found) - set(classes)), sorted(set(classes) - set(found))
        raise DataError(
            f"the class folders of {directory} differ from those of the training split: "
            f"{len(extra)} extra {extra[:5]}, {len(lacking)} missing {lacking[:5]}"
        )
    samples: list[tuple[Path, int]] = []
    empty: list[str] = []
    for label, name in enumerate(found):
        named = [p for p in (directory / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and not p.is_dir()]
        special = [p for p in named if not p.is_file()]
        if special:  # a FIFO would block the loader (as every reader of a user-given path, it is refused, not skipped)
            raise DataError(f"{special[0]} is not a regular file (a FIFO, a socket, a device or a dangling link), though named as an image"
                            f"{f' ({len(special)} such in {directory})' if len(special) > 1 else ''}: replace it with the image or remove it")
        images = sorted(named)
        if not images:
            empty.append(name)
        samples.extend((p, label) for p in images)
    if empty:
        raise DataError(
            f"{len(empty)} class folder(s) of {directory} hold no images ({', '.join(empty[:5])}"
            f"{', ...' if len(empty) > 5 else ''}); images end in {', '.join(IMAGE_EXTENSIONS)}"
        )
    return found, samples


def files_identity(directory: Path, samples: list[tuple[Path, int]]) -> str:
    """A split's file list as it identifies the data: each image's path below ``directory``, its
    label and its size in bytes (not its content, which would mean reading every image twice)."""
    sizes = [(path.relative_to(directory).as_posix(), label, path.stat().st_size) for path, label in samples]
    listed = digest("\t".join(map(str, entry)) + "\n" for entry in sizes)
    return f"{len(sizes)} files of {sum(size for *_, size in sizes)} bytes, sha256 {listed}"


class CropDataset(torch.utils.data.Dataset):
    """Items ``(index, epoch)`` (training) or ``index`` (validation) → (uint8 C×H×W tensor, label)."""

    def __init__(self, samples: list[tuple[Path, int]], seed: int, schedule: ResolutionSchedule | None, val_res: int, crop_ratio: float) -> None:
        self.samples, self.seed, self.schedule = samples, seed, schedule
        self.val_res, self.crop_ratio = val_res, crop_ratio

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        path, label = self.samples[index]
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        if self.schedule is not None:
            res = self.schedule(epoch)
            top, left, h, w, flip = random_resized_crop(epoch_key(self.seed, epoch), index, image.height, image.width)
            image = image.resize((res, res), Image.BILINEAR, box=(left, top, left + w, top + h))
            if flip:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            top, left, h, w = center_crop(image.height, image.width, self.crop_ratio)
            image = image.resize((self.val_res, self.val_res), Image.BILINEAR, box=(left, top, left + w, top + h))
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1), label


class EpochSampler(torch.utils.data.DistributedSampler):
    """PyTorch's DistributedSampler (order from ``(seed, epoch)``) yielding ``(index, epoch)``;
    the next pass skips its first ``skip`` indices (a run resumed inside an epoch)."""

    skip = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        skip, self.skip = self.skip, 0
        return ((index, self.epoch) for index in itertools.islice(super().__iter__(), skip, None))


class FolderLoader:
    """A DataLoader with workers; batches are normalised on the run's device."""

    def __init__(self, dataset: CropDataset, sampler, batch_size: int, drop_last: bool, workers: int, normalize: Normalize, device: torch.device) -> None:
        self.sampler, self.normalize, self.device = sampler, normalize, device
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size, sampler=sampler, num_workers=workers, pin_memory=device.type == "cuda",
            drop_last=drop_last, persistent_workers=workers > 0,
        )

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        if isinstance(self.sampler, EpochSampler):
            self.sampler.set_epoch(epoch)
            self.sampler.skip = start_batch * self.loader.batch_size
        elif start_batch:
            raise ValueError("only a training loader (EpochSampler) can start inside an epoch")

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            images = images.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yield self.normalize(images), labels.to(self.device, non_blocking=True)

    def __len__(self) -> int:
        return len(self.loader)


def check_image(path: Path) -> str | None:
    """None if ``path`` decodes as an image; else the reason. JPEGs are decoded at reduced size
    (libjpeg's DCT scaling), which still reads every byte of the compressed data."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            image.convert("RGB").load()
        return None
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, ... for bad files
        return f"{type(error).__name__}: {error}"


def find_bad_images(samples: list[tuple[Path, int]], workers: int, label: str, show: bool = True) -> list[tuple[str, str]]:
    """Every image of ``samples`` decoded once (in ``workers`` processes, a progress bar when
    ``show``): the unreadable ones with their reasons."""
    import multiprocessing

    from tqdm import tqdm

    paths = [p for p, _ in samples]
    with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
        reasons = list(tqdm(pool.imap(check_image, paths, chunksize=64), total=len(paths), desc=f"checking {label}", unit="img",
                            disable=not show, leave=False))
    return [(str(p), r) for p, r in zip(paths, reasons) if r is not None]


def build_imagefolder_data(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int, world_size: int, device: torch.device) -> DataBundle:
    if not cfg.root:
        raise DataError("data=imagefolder needs data.root=/path with train/<class>/ and val/<class>/ image folders")
    root = Path(cfg.root).expanduser()
    classes, train_samples = scan_split(root / "train")
    _, val_samples = scan_split(root / "val", classes)
    for split, samples in (("train", train_samples), ("val", val_samples)):  # before training, not mid-epoch
        bad = find_bad_images(samples, cfg.workers, f"{root / split}", show=rank == 0)
        if bad:
            listed = "; ".join(f"{p} ({r})" for p, r in bad[:5])
            raise DataError(f"{len(bad)} unreadable image(s) in {root / split}: {listed}. Remove or replace them (data=imagefolder "
                            f"decodes every image once before training)")
    num_classes = resolve_num_classes(cfg.num_classes, len(classes), f"{root}/train")
    schedule = schedule_from(cfg)
    normalize = Normalize(cfg.mean, cfg.std)
    train_set = CropDataset(train_samples, seed, schedule, cfg.val_res, cfg.val_crop_ratio)
    val_set = CropDataset(val_samples, seed, None, cfg.val_res, cfg.val_crop_ratio)
    train_sampler = EpochSampler(train_set, world_size, rank, shuffle=True, seed=seed, drop_last=False)
    val_indices = list(range(rank, len(val_set), world_size))  # every image once over the ranks
    return DataBundle(
        train=FolderLoader(train_set, train_sampler, batch_size, True, cfg.workers, normalize, device),
        test=FolderLoader(val_set, val_indices, eval_batch_size, False, cfg.workers, normalize, device),
        num_classes=num_classes,
        in_channels=3,
        image_size=cfg.max_res,
        train_size=len(train_set),
        test_size=len(val_set),
        input=validation_input(cfg, "PIL.Image.BILINEAR", classes),
        resolution_at=schedule,
        identity={"train files": files_identity(root / "train", train_samples), "val files": files_identity(root / "val", val_samples)},
    )
