"""Image classification data from FFCV ``.beton`` files (``data=ffcv_imagenet``).

``data.root`` holds ``train.beton`` and ``val.beton`` as ``scripts/write_ffcv.py`` writes them (an
``image`` RGB field and an integer ``label``; files from ffcv-imagenet's writer work too).

Training batches: random-resized crop decoded straight at the epoch's resolution (progressive
resizing), horizontal flip, normalisation, channels_last, on the run's device (on the CPU the
decoder flips and normalises in one pass of its parallel loop; on a GPU it sends uint8 and torch
normalises there: FFCV's GPU normaliser would need cupy); drop-last; the
order of FFCV's ``RANDOM`` with ``distributed=True`` (PyTorch's DistributedSampler seeded by
``(trainer.seed, epoch)``: each rank its shard, the same number of steps), also with one process,
so it equals the order of ``data=imagefolder``. The crops and flips are computed from ``(seed,
epoch, image index)`` (``training/data/augment.py``) inside the decoder, so they do not depend on
which thread decodes an image: a resumed run sees exactly the batches of an uninterrupted one.
Validation: centre crop (``data.val_crop_ratio`` of the shorter side) resized to ``data.val_res``,
sequential, each rank a disjoint slice, so every image is counted exactly once over the ranks.

What of FFCV 1.0.2 this needs changed (its thread count, epoch iterator, orders) is in
:mod:`training.data.ffcv_patches`, which says why.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numba
import numpy as np
import torch

from training.data.ffcv_patches import DistributedSamplerOrder, KeyedLoader, ReproducibleQuasiRandom  # first: before FFCV's import sets torch's threads

from ffcv.fields.basics import IntDecoder
from ffcv.fields.rgb_image import CenterCropRGBImageDecoder, ResizedCropRGBImageDecoder
from ffcv.loader import OrderOption
from ffcv.pipeline.allocation_query import AllocationQuery
from ffcv.pipeline.compiler import Compiler
from ffcv.reader import Reader
from ffcv.transforms import ToDevice, ToTensor, ToTorchImage
from omegaconf import DictConfig

from training.data.augment import (
    CROP_TRIES,
    FLIP_DRAW,
    LOG_RATIO,
    SCALE,
    Normalize,
    ResolutionSchedule,
    schedule_from,
    validation_input,
)
from training.data.base import META_NAME, DataBundle, DataError, digest, resolve_num_classes

FILES = ("train.beton", "val.beton")


# -- the seeded crop, compiled (the same computation as augment.random_resized_crop) -------------
_G = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@numba.njit(cache=False)
def _mix(x):
    x = x + _G
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@numba.njit(cache=False)
def _uniform(image_key, draw):
    return np.float64(_mix(_mix(image_key) + np.uint64(draw)) >> _S11) * (1.0 / 9007199254740992.0)


@numba.njit(cache=False)
def seeded_crop(key, index, height, width):
    """``(top, left, h, w, flip)``: :func:`training.data.augment.random_resized_crop` in numba."""
    image_key = np.uint64(key) ^ _mix(np.uint64(index))
    area = np.float64(height) * np.float64(width)
    flip = _uniform(image_key, FLIP_DRAW) < 0.5
    for t in range(CROP_TRIES):
        target_area = area * (SCALE[0] + (SCALE[1] - SCALE[0]) * _uniform(image_key, 4 * t))
        aspect = np.exp(LOG_RATIO[0] + (LOG_RATIO[1] - LOG_RATIO[0]) * _uniform(image_key, 4 * t + 1))
        w = int(np.sqrt(target_area * aspect) + 0.5)
        h = int(np.sqrt(target_area / aspect) + 0.5)
        if 0 < w <= width and 0 < h <= height:
            top = int(_uniform(image_key, 4 * t + 2) * (height - h + 1))
            left = int(_uniform(image_key, 4 * t + 3) * (width - w + 1))
            return top, left, h, w, flip
    in_ratio = np.float64(width) / np.float64(height)
    h, w = height, width
    if in_ratio < 0.75:
        h = int(width / 0.75 + 0.5)
    elif in_ratio > 4.0 / 3.0:
        w = int(height * (4.0 / 3.0) + 0.5)
    return (height - h) // 2, (width - w) // 2, h, w, flip


class SeededRandomResizedCrop(ResizedCropRGBImageDecoder):
    """FFCV decoder: random-resized crop + horizontal flip at ``output_size``, computed from
    ``(epoch key, image index)``; with ``mean``/``std`` (per channel, 0-255 units) it also
    normalises, writing float32, in the same pass and the same parallel loop (used on the CPU;
    on a GPU it writes uint8 and torch normalises there). Set ``output_size`` between epochs to
    change the resolution (the iterator allocates its buffers from it each epoch; the compiled code
    is shape-independent)."""

    def __init__(self, output_size: tuple[int, int], mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        super().__init__(output_size)
        self.table = None if mean is None else ((np.arange(256)[:, None] - mean[None, :]) / std[None, :]).astype(np.float32)

    def declare_state_and_memory(self, previous_state):
        state, (_, scratch) = super().declare_state_and_memory(previous_state)
        shape = state.shape
        dtype = np.dtype("<u1") if self.table is None else np.dtype("<f4")
        return replace(state, dtype=dtype), (
            AllocationQuery(shape, dtype),  # the output
            scratch,  # a decoded JPEG
            AllocationQuery((1,), np.dtype("<u8")),  # the epoch key
            AllocationQuery(shape, np.dtype("<u1")),  # the resized crop
        )

    @property
    def get_crop_generator(self):  # required by the base class; the crop is computed in generate_code
        return seeded_crop

    def generate_code(self) -> Callable:
        from ffcv.fields.rgb_image import IMAGE_MODES
        from ffcv.libffcv import imdecode, resize_crop

        jpg = IMAGE_MODES["jpg"]
        mem_read = self.memory_read
        my_range = Compiler.get_iterator()
        imdecode_c = Compiler.compile(imdecode)
        resize_crop_c = Compiler.compile(resize_crop)
        normalise = self.table is not None
        table = self.table if normalise else np.zeros((256, 3), np.float32)

        def decode(batch_indices, my_storage, metadata, storage_state):
            destination, scratch, key_buffer, resized = my_storage
            key = key_buffer[0, 0]
            for dst_ix in my_range(len(batch_indices)):
                source_ix = batch_indices[dst_ix]
                field = metadata[source_ix]
                image_data = mem_read(field["data_ptr"], storage_state)
                height, width = np.uint32(field["height"]), np.uint32(field["width"])
                if field["mode"] == jpg:
                    buffer = scratch[dst_ix]
                    imdecode_c(image_data, buffer, height, width, height, width, 0, 0, 1, 1, False, False)
                    image = buffer.reshape(-1)[: 3 * height * width].reshape(height, width, 3)
                else:
                    image = image_data.reshape(height, width, 3)
                top, left, h, w, flip = seeded_crop(key, source_ix, height, width)
                crop = resized[dst_ix]
                resize_crop_c(image, top, top + h, left, left + w, crop)
                out = destination[dst_ix]
                columns = crop.shape[1]
                for r in range(crop.shape[0]):  # one pass: flip and (on the CPU) normalise
                    for c in range(columns):
                        source_c = columns - 1 - c if flip else c
                        for ch in range(3):
                            if normalise:
                                out[r, c, ch] = table[crop[r, source_c, ch], ch]
                            else:
                                out[r, c, ch] = crop[r, source_c, ch]
            return destination[: len(batch_indices)]

        decode.is_parallel = True
        return decode


class FfcvLoader:
    """The :class:`training.data.base.Loader` over one ``.beton`` file."""

    def __init__(self, loader: KeyedLoader, normalize: Normalize | None, schedule: ResolutionSchedule | None = None) -> None:
        self.loader, self.normalize, self.schedule = loader, normalize, schedule

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.loader.next_epoch = epoch  # FFCV's order (and our key) of epoch e: seed + e
        self.loader.start_batch = start_batch
        if self.schedule is not None:
            res = self.schedule(epoch)
            self.loader.keyed_decoder.output_size = (res, res)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield (images if self.normalize is None else self.normalize(images)), labels.view(-1).long()

    def __len__(self) -> int:
        return len(self.loader)


def _label_field(reader: Reader, path: Path) -> int:
    """The position of the ``label`` field; a clear error for a file without ``image`` and ``label``."""
    from ffcv.fields import IntField, RGBImageField

    names = list(reader.handlers)
    kinds = {name: type(field).__name__ for name, field in reader.handlers.items()}
    if not (isinstance(reader.handlers.get("image"), RGBImageField) and isinstance(reader.handlers.get("label"), IntField)):
        raise DataError(
            f"{path} has fields {kinds}; data=ffcv_imagenet needs an RGBImageField 'image' and an IntField 'label' "
            f"(write it with scripts/write_ffcv.py)"
        )
    return names.index("label")


def _open(path: Path) -> tuple[Reader, np.ndarray]:
    """The reader of ``path`` and its labels (from the metadata, without decoding any image)."""
    try:
        reader = Reader(str(path))
    except Exception as error:  # FFCV raises assorted errors on a truncated or foreign file
        raise DataError(f"{path} is not a readable FFCV file ({type(error).__name__}: {error}); write it again with scripts/write_ffcv.py") from error
    label_ix = _label_field(reader, path)
    if reader.num_samples == 0:
        raise DataError(f"{path} holds no images")
    return reader, reader.metadata[f"f{label_ix}"]


def beton_identity(reader: Reader, path: Path) -> str:
    """A ``.beton`` file as it identifies the data: its size, and a digest of its header, field
    descriptors, per-image metadata (the labels, each image's size and place) and allocation table
    (everything but the image bytes themselves, which would mean reading the whole file)."""
    parts = (reader.header, reader.field_descriptors, reader.metadata, reader.alloc_table)
    return (f"{path.stat().st_size} bytes, {reader.num_samples} images, header and metadata sha256 "
            f"{digest(part.tobytes() for part in parts)}")


def meta_identity(meta: Path) -> str:
    """``dataset.json`` as it identifies the data: a digest of its content (or its absence)."""
    return f"sha256 {digest([meta.read_bytes()])}" if meta.exists() else "absent"


def _read_meta(meta: Path) -> dict:
    """``dataset.json`` as scripts/write_ffcv.py writes it: a mapping with the class names."""
    again = (f"write the files again with scripts/write_ffcv.py, or delete {meta} (the class count then comes from the labels)")
    try:
        data = json.loads(meta.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{meta} is not valid JSON ({error}): {again}") from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list) or not data["classes"]:
        raise DataError(f"{meta} has no list of classes (`classes`): {again}")
    return data


def _check_meta(root: Path, data: dict, train_labels: np.ndarray, val_labels: np.ndarray) -> int:
    """The class count that ``dataset.json`` (``data``) lists, once it agrees with the files: the
    image counts it wrote for each split (train and val not swapped) and the range of the labels."""
    meta = root / META_NAME
    counts = {"train": len(train_labels), "val": len(val_labels)}
    classes = len(data["classes"])
    written = {split: (data.get("splits") or {}).get(split, {}).get("images") for split in counts}
    if written["train"] == counts["val"] and written["val"] == counts["train"] and counts["train"] != counts["val"]:
        raise DataError(f"train.beton and val.beton in {root} look swapped: train.beton holds {counts['train']} images and val.beton "
                        f"{counts['val']}, where {META_NAME} says train {written['train']} and val {written['val']}; rename them back")
    for split, n in counts.items():
        if written[split] is not None and written[split] != n:
            raise DataError(f"{meta} says {split}.beton holds {written[split]} images, but it holds {n}: the files and {META_NAME} "
                            f"come from different writes; write them again together with scripts/write_ffcv.py")
    labels_classes = int(max(train_labels.max(), val_labels.max())) + 1
    if labels_classes > classes:
        raise DataError(f"the labels in {root} go up to {labels_classes - 1}, but {meta} lists {classes} classes: the files and "
                        f"{META_NAME} come from different data sets; write them again together with scripts/write_ffcv.py")
    if int(train_labels.max()) + 1 != classes:
        raise DataError(f"{meta} lists {classes} classes, but the labels in train.beton only reach {int(train_labels.max())}: the files "
                        f"and {META_NAME} come from different data sets; write them again together with scripts/write_ffcv.py")
    return classes


def _num_classes(root: Path, configured: int | None, train_labels: np.ndarray, val_labels: np.ndarray,
                 rank: int) -> tuple[int, list[str] | None]:
    """The class count, from ``dataset.json`` when it is there (checked against the files by
    :func:`_check_meta`), else from the labels (said on rank 0); and the class names it lists."""
    meta = root / META_NAME
    names = None
    if meta.exists():
        data = _read_meta(meta)
        classes, names = _check_meta(root, data, train_labels, val_labels), [str(name) for name in data["classes"]]
        where = f"the data set in {root} ({META_NAME})"
    else:
        classes = int(max(train_labels.max(), val_labels.max())) + 1
        where = f"the data set in {root} (largest label + 1; no {META_NAME} beside the files)"
        if rank == 0:
            print(f"warning: no {META_NAME} in {root}: the class count is the largest label + 1 = {classes}, and the files cannot be "
                  f"checked for being swapped (scripts/write_ffcv.py writes {META_NAME} beside them)", file=sys.stderr)
            if len(train_labels) < len(val_labels):
                print(f"warning: train.beton holds fewer images ({len(train_labels)}) than val.beton ({len(val_labels)}) in {root}: "
                      f"check that they are not swapped", file=sys.stderr)
    n = resolve_num_classes(configured, classes, where)
    low = int(min(train_labels.min(), val_labels.min()))
    high = int(max(train_labels.max(), val_labels.max()))
    if low < 0 or high >= n:
        raise DataError(f"the labels in {root} range over [{low}, {high}], outside the {n} classes (data.num_classes)")
    return n, names


def build_ffcv_data(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int, world_size: int, device: torch.device) -> DataBundle:
    root = Path(cfg.root).expanduser() if cfg.root else None
    for path in [root / name for name in (*FILES, META_NAME)] if root else []:
        if path.exists() and not path.is_file():  # a FIFO would block the reader
            raise DataError(f"{path} is not a regular file (a FIFO, a socket, a device or a directory): data.root={cfg.root} must hold "
                            f"the files scripts/write_ffcv.py writes")
    missing = [name for name in FILES if root is None or not (root / name).is_file()]
    if missing:
        where = f"data.root={cfg.root}" if root else "data.root is not set"
        raise DataError(
            f"FFCV files not found ({where}; missing: {', '.join(missing)}). Write them from an ImageFolder tree with "
            f"`python scripts/write_ffcv.py /path/to/imagenet /path/to/out` and pass data.root=/path/to/out, or run "
            f"the same method at small scale on Fashion-MNIST with setting=small."
        )
    assert root is not None
    train_reader, train_labels = _open(root / "train.beton")
    val_reader, val_labels = _open(root / "val.beton")
    num_classes, class_names = _num_classes(root, cfg.num_classes, train_labels, val_labels, rank)
    if world_size > 1 and cfg.order == "quasi_random":
        raise DataError("data.order=quasi_random is not available with more than one process (FFCV); use data.order=random")

    schedule = schedule_from(cfg)
    on_gpu = device.type == "cuda"
    normalize = Normalize(cfg.mean, cfg.std)

    def image_tail() -> list:  # after the decoder: uint8 H×W×3 images, normalised by the wrapper
        device_copy = [ToDevice(device, non_blocking=True)] if on_gpu else []
        return [ToTensor(), *device_copy, ToTorchImage(channels_last=True, convert_back_int16=False)]

    def label_pipeline() -> list:
        return [IntDecoder(), ToTensor()] + ([ToDevice(device, non_blocking=True)] if on_gpu else [])

    res = schedule(0)
    mean, std = 255 * np.asarray(cfg.mean, dtype=np.float64), 255 * np.asarray(cfg.std, dtype=np.float64)
    decoder = SeededRandomResizedCrop((res, res), None if on_gpu else mean, None if on_gpu else std)
    quasi = cfg.order == "quasi_random"
    train = KeyedLoader(
        str(root / "train.beton"), batch_size=batch_size, num_workers=cfg.workers, os_cache=cfg.os_cache,
        order=OrderOption.QUASI_RANDOM if quasi else OrderOption.RANDOM, distributed=world_size > 1, seed=seed, drop_last=True,
        pipelines={"image": [decoder, *image_tail()], "label": label_pipeline()},
        keyed_decoder=decoder, augment_seed=seed,
        traversal=ReproducibleQuasiRandom if quasi else lambda loader: DistributedSamplerOrder(loader, rank, world_size),
    )
    n_val = val_reader.num_samples
    val = KeyedLoader(
        str(root / "val.beton"), batch_size=eval_batch_size, num_workers=cfg.workers, os_cache=cfg.os_cache,
        order=OrderOption.SEQUENTIAL, distributed=False, indices=np.arange(n_val, dtype=np.uint64)[rank::world_size], drop_last=False,
        pipelines={
            "image": [CenterCropRGBImageDecoder((cfg.val_res, cfg.val_res), ratio=cfg.val_crop_ratio), *image_tail()],
            "label": label_pipeline(),
        },
    )
    return DataBundle(
        train=FfcvLoader(train, normalize if on_gpu else None, schedule),  # on the CPU the decoder normalises
        test=FfcvLoader(val, normalize),
        num_classes=num_classes,
        in_channels=3,
        image_size=cfg.max_res,
        train_size=train_reader.num_samples,
        test_size=n_val,
        input=validation_input(cfg, "cv2.INTER_AREA (FFCV's CenterCropRGBImageDecoder, from the .beton's stored copy)", class_names),
        resolution_at=schedule,
        identity={"train.beton": beton_identity(train_reader, root / "train.beton"), "val.beton": beton_identity(val_reader, root / "val.beton"),
                  META_NAME: meta_identity(root / META_NAME)},
    )
