"""The FFCV loader behind data=ffcv_imagenet, on real .beton files written from real JPEGs:
batches against an independent reconstruction, reproducible epochs, resolutions, validation,
errors. FFCV must be installed (``make setup``): these tests are not skipped without it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from ffcv.fields.basics import IntDecoder
from ffcv.fields.rgb_image import SimpleRGBImageDecoder
from ffcv.loader import Loader, OrderOption

from tests.compose import compose_config
from tests.conftest import N_TRAIN, N_VAL
from training.data import DataError, build_data
from training.data.augment import epoch_key, random_resized_crop

MEAN = np.array([0.485, 0.456, 0.406]) * 255
STD = np.array([0.229, 0.224, 0.225]) * 255
RECIPE = ["data.min_res=32", "data.max_res=64", "data.start_ramp_epoch=0", "data.end_ramp_epoch=2", "data.val_res=48"]


def ffcv_data(root, *overrides: str, batch_size: int = 50, seed: int = 3, source: str = "ffcv_imagenet"):
    cfg = compose_config([f"data={source}", f"data.root={root}", "data.workers=2", *RECIPE, *overrides])
    return build_data(cfg.data, batch_size, 200, seed)


def first_batches(loader, epoch: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    out = []
    for x, y in loader:
        out.append((x.clone(), y.clone()))
        if len(out) == n:
            break
    return out


def stored_images(path) -> tuple[np.ndarray, np.ndarray]:
    loader = Loader(str(path), batch_size=500, num_workers=1, order=OrderOption.SEQUENTIAL, drop_last=False,
                    pipelines={"image": [SimpleRGBImageDecoder()], "label": [IntDecoder()]})
    images, labels = zip(*((np.array(x), np.array(y).ravel()) for x, y in loader))
    return np.concatenate(images), np.concatenate(labels)


def test_training_batches_are_the_seeded_crops_of_the_stored_images(beton_dir):
    """Rebuild two batches of epoch 1 from the stored pixels: the order (PyTorch's
    DistributedSampler with seed 3, epoch 1), the crop box and flip (augment.random_resized_crop,
    the pure-Python computation), OpenCV's area resize, the ImageNet normalisation."""
    data = ffcv_data(beton_dir)
    batches = first_batches(data.train, 1, 2)
    images, labels = stored_images(beton_dir / "train.beton")
    sampler = torch.utils.data.DistributedSampler(range(N_TRAIN), num_replicas=1, rank=0, shuffle=True, seed=3)
    sampler.set_epoch(1)
    order = list(sampler)
    key = epoch_key(3, 1)
    flips = 0
    for b, (x, y) in enumerate(batches):
        assert x.shape == (50, 3, 64, 64) and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
        for k in range(50):
            index = order[b * 50 + k]
            assert y[k].item() == labels[index]
            top, left, h, w, flip = random_resized_crop(key, index, 64, 64)
            crop = cv2.resize(np.ascontiguousarray(images[index][top : top + h, left : left + w]), (64, 64), interpolation=cv2.INTER_AREA)
            if flip:
                crop = crop[:, ::-1]
            expected = (crop - MEAN) / STD
            got = x[k].permute(1, 2, 0).numpy()
            assert np.abs(got - expected).max() < 1e-4, (b, k, index)
            flips += flip
    assert 20 < flips < 80


def test_an_epoch_is_the_same_whatever_ran_before_it_and_with_any_worker_count(beton_dir):
    straight = ffcv_data(beton_dir)
    for epoch in (0, 1):
        first_batches(straight.train, epoch, 2)
    after_two = first_batches(straight.train, 2, 3)
    fresh = first_batches(ffcv_data(beton_dir, "data.workers=1").train, 2, 3)
    for (xa, ya), (xb, yb) in zip(after_two, fresh):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)
    other_epoch = first_batches(straight.train, 1, 1)[0]
    assert not torch.equal(other_epoch[1], after_two[0][1])
    other_seed = first_batches(ffcv_data(beton_dir, seed=4).train, 2, 1)[0]
    assert not torch.equal(other_seed[1], after_two[0][1])


def test_progressive_resizing_and_epoch_length(beton_dir):
    data = ffcv_data(beton_dir, batch_size=64)
    assert len(data.train) == N_TRAIN // 64  # drop-last
    assert [data.resolution_at(e) for e in range(4)] == [32, 64, 64, 64]  # round(48 / 32) * 32 = 64 in epoch 1
    for epoch, res in ((0, 32), (1, 64), (0, 32)):
        x, _ = first_batches(data.train, epoch, 1)[0]
        assert x.shape[-2:] == (res, res)


def test_validation_is_every_image_once_centre_cropped(beton_dir):
    data = ffcv_data(beton_dir)
    images, labels = stored_images(beton_dir / "val.beton")
    xs, ys = zip(*data.test)
    x, y = torch.cat(xs), torch.cat(ys)
    assert data.test_size == N_VAL and x.shape == (N_VAL, 3, 48, 48)
    assert y.tolist() == labels.tolist()
    side = int(0.875 * 64)  # the centre 56×56 of a 64×64 image, resized to 48
    off = (64 - side) // 2
    for i in (0, 1, 500, 999):
        crop = cv2.resize(np.ascontiguousarray(images[i][off : off + side, off : off + side]), (48, 48), interpolation=cv2.INTER_AREA)
        assert np.abs(x[i].permute(1, 2, 0).numpy() - (crop - MEAN) / STD).max() < 1e-4


def test_the_loader_leaves_torch_threads_alone(beton_dir):
    torch.set_num_threads(1)
    try:
        data = ffcv_data(beton_dir, "data.workers=2")
        first_batches(data.train, 0, 3)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(2)


def test_image_statistics_and_classes_can_be_overridden(beton_dir):
    data = ffcv_data(beton_dir, "data.mean=[0,0,0]", "data.std=[1,1,1]")
    x, _ = first_batches(data.train, 0, 1)[0]
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9  # plain x / 255
    assert data.num_classes == 10 and ffcv_data(beton_dir, "data.num_classes=10").num_classes == 10
    with pytest.raises(DataError, match=r"data.num_classes=1000 does not match the 10 classes"):
        ffcv_data(beton_dir, "data.num_classes=1000")


def test_missing_or_foreign_files_get_a_clear_message(tmp_path, beton_dir):
    with pytest.raises(DataError, match=r"missing: train.beton, val.beton.*scripts/write_ffcv.py"):
        ffcv_data(tmp_path)
    (tmp_path / "train.beton").write_bytes(b"not an ffcv file" * 100)
    (tmp_path / "val.beton").write_bytes((beton_dir / "val.beton").read_bytes())
    with pytest.raises(DataError, match="is not a readable FFCV file"):
        ffcv_data(tmp_path)


def test_imagefolder_serves_the_same_recipe(jpeg_tree, beton_dir):
    """data=imagefolder: the same order, labels, crop boxes, flips and sizes as FFCV; the pixels
    differ only by resampling (PIL bilinear vs OpenCV area) and FFCV's JPEG re-encoding."""
    folder = ffcv_data(jpeg_tree, source="imagefolder")
    ffcv = ffcv_data(beton_dir)
    assert (folder.num_classes, len(folder.train), folder.train_size, folder.test_size) == (ffcv.num_classes, len(ffcv.train), N_TRAIN, N_VAL)
    for epoch in (0, 1):
        (xf, yf), = first_batches(folder.train, epoch, 1)
        (xc, yc), = first_batches(ffcv.train, epoch, 1)
        assert torch.equal(yf, yc) and xf.shape == xc.shape
        same = [torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item() for a, b in zip(xf, xc)]
        shuffled = [torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item() for a, b in zip(xf, xc.roll(1, 0))]
        assert np.median(same) > 0.95 and np.median(shuffled) < 0.8
    xs, ys = zip(*folder.test)
    assert torch.cat(ys).tolist() == torch.cat([y for _, y in ffcv.test]).tolist()


def test_quasi_random_order_is_reproducible_and_covers_the_epoch(beton_dir):
    data = ffcv_data(beton_dir, "data.order=quasi_random", "data.os_cache=false", batch_size=100)
    first = torch.cat([y for _, y in first_batches(data.train, 1, 30)])
    again = torch.cat([y for _, y in first_batches(data.train, 1, 30)])
    assert torch.equal(first, again) and len(first) == N_TRAIN
    assert not torch.equal(first, torch.cat([y for _, y in first_batches(data.train, 2, 30)]))
    _, labels = stored_images(beton_dir / "train.beton")
    assert torch.bincount(first).tolist() == np.bincount(labels).tolist()  # every image once


def test_an_error_in_the_pipeline_thread_is_raised_not_waited_for(beton_dir):
    import threading
    from dataclasses import replace

    from ffcv.pipeline.operation import Operation
    from ffcv.transforms import ToTensor

    from training.data.ffcv_patches import KeyedLoader

    class Boom(Operation):
        def generate_code(self):
            def boom(images, dst):
                raise ValueError("boom in the pipeline")
            return boom

        def declare_state_and_memory(self, previous_state):
            return replace(previous_state, jit_mode=False), None

    loader = KeyedLoader(str(beton_dir / "val.beton"), batch_size=100, num_workers=1, order=OrderOption.SEQUENTIAL,
                     pipelines={"image": [SimpleRGBImageDecoder(), ToTensor(), Boom()], "label": [IntDecoder()]})
    raised: list[BaseException] = []

    def consume() -> None:
        try:
            next(iter(loader))
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the consumer is still waiting for a batch"
    assert isinstance(raised[0], DataError) and "boom in the pipeline" in str(raised[0])


def test_the_gpu_variant_sends_uint8_that_normalises_to_the_same_batch(beton_dir):
    """On a GPU the decoder writes uint8 (normalised by torch on the device): run that variant
    here on the CPU and compare with the CPU variant, which normalises inside the decoder."""
    from ffcv.transforms import ToTensor, ToTorchImage

    from training.data.augment import Normalize
    from training.data.ffcv_loader import SeededRandomResizedCrop
    from training.data.ffcv_patches import DistributedSamplerOrder, KeyedLoader

    cpu = ffcv_data(beton_dir, "data.min_res=64", "data.max_res=64")
    decoder = SeededRandomResizedCrop((64, 64))
    uint8 = KeyedLoader(str(beton_dir / "train.beton"), batch_size=50, num_workers=2, order=OrderOption.RANDOM, seed=3,
                    pipelines={"image": [decoder, ToTensor(), ToTorchImage(channels_last=True, convert_back_int16=False)],
                               "label": [IntDecoder(), ToTensor()]},
                    keyed_decoder=decoder, augment_seed=3, traversal=lambda loader: DistributedSamplerOrder(loader, 0, 1))
    uint8.next_epoch = 2
    x8, y8 = next(iter(uint8))
    (x, y), = first_batches(cpu.train, 2, 1)
    assert x8.dtype == torch.uint8 and torch.equal(y8.view(-1), y)
    assert torch.allclose(Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(x8), x, atol=1e-5)


def _linked(beton_dir, folder, meta=None, swap=False):
    """A data folder with the session's files (linked, or swapped) and a ``dataset.json`` (``meta``
    text, or none)."""
    folder.mkdir()
    names = ("val.beton", "train.beton") if swap else ("train.beton", "val.beton")
    for name, target in zip(("train.beton", "val.beton"), names):
        (folder / name).symlink_to(beton_dir / target)
    if meta is not None:
        (folder / "dataset.json").write_text(meta)
    return folder


@pytest.mark.parametrize("meta, message", [
    ("{not json", r"dataset.json is not valid JSON .*: write the files again with scripts/write_ffcv.py, or delete"),
    ("[1, 2]", r"dataset.json has no list of classes \(`classes`\)"),
    ('{"settings": {}}', r"dataset.json has no list of classes"),
    ('{"classes": ["a", "b", "c"]}', r"the labels in .* go up to 9, but .*dataset.json lists 3 classes"),
    ('{"classes": [' + ", ".join(f'"c{i}"' for i in range(12)) + ']}', r"lists 12 classes, but the labels in train.beton only reach 9"),
    (None, None),  # placeholder replaced below: counts that disagree with the files
])
def test_a_dataset_json_that_is_broken_or_contradicts_the_files_is_refused(tmp_path, beton_dir, meta, message):
    if meta is None:
        good = json.loads((beton_dir / "dataset.json").read_text())
        good["splits"]["val"]["images"] = 999
        meta, message = json.dumps(good), r"says val.beton holds 999 images, but it holds 1000: the files and dataset.json come from different"
    with pytest.raises(DataError, match=message):
        ffcv_data(_linked(beton_dir, tmp_path / "data", meta))


def test_swapped_files_are_refused_and_a_folder_without_dataset_json_says_what_it_uses(tmp_path, beton_dir, capsys):
    with pytest.raises(DataError, match=r"train.beton and val.beton in .* look swapped: train.beton holds 1000 images and val.beton 3000, "
                                        r"where dataset.json says train 3000 and val 1000; rename them back"):
        ffcv_data(_linked(beton_dir, tmp_path / "swapped", (beton_dir / "dataset.json").read_text(), swap=True))
    data = ffcv_data(_linked(beton_dir, tmp_path / "bare"))
    assert data.num_classes == 10
    err = capsys.readouterr().err
    assert "warning: no dataset.json in" in err and "the class count is the largest label + 1 = 10" in err
    ffcv_data(_linked(beton_dir, tmp_path / "bare_swapped", swap=True))
    assert "warning: train.beton holds fewer images (1000) than val.beton (3000)" in capsys.readouterr().err


def test_the_data_identity_follows_the_content_not_the_place(tmp_path, beton_dir, jpeg_tree):
    """What a checkpoint records of the data (no path): the same files elsewhere give the same
    identity; one label changed in train.beton's metadata, or another dataset.json, change that
    part only. For an ImageFolder tree: the file list with labels and sizes."""
    import shutil

    from ffcv.reader import Reader
    from ffcv.types import HeaderType

    from training.data.imagefolder import files_identity, scan_split

    moved = tmp_path / "moved"
    shutil.copytree(beton_dir, moved)
    original = ffcv_data(beton_dir).identity
    assert set(original) == {"train.beton", "val.beton", "dataset.json"}
    assert ffcv_data(moved).identity == original and "bytes, 3000 images, header and metadata sha256" in original["train.beton"]
    reader = Reader(str(moved / "train.beton"))
    field = f"f{reader.field_names.index('label')}"
    labels = reader.metadata[field]
    offset = HeaderType.itemsize + reader.field_descriptors.nbytes + reader.metadata.dtype.fields[field][1]  # as Reader.read_metadata
    raw = bytearray((moved / "train.beton").read_bytes())
    label_bytes = slice(offset, offset + labels.dtype.itemsize)
    assert int.from_bytes(raw[label_bytes], "little") == int(labels[0])  # the first image's label, where FFCV reads it
    raw[label_bytes] = ((int(labels[0]) + 1) % 10).to_bytes(labels.dtype.itemsize, "little")
    (moved / "train.beton").write_bytes(bytes(raw))
    relabelled = ffcv_data(moved).identity
    assert [part for part in original if relabelled[part] != original[part]] == ["train.beton"]
    (moved / "dataset.json").write_text((beton_dir / "dataset.json").read_text().replace('"classes"', '"classes" ', 1))
    assert ffcv_data(moved).identity["dataset.json"] != original["dataset.json"]

    copied = tmp_path / "tree"
    shutil.copytree(jpeg_tree, copied)
    identity = {root: files_identity(root / "train", scan_split(root / "train")[1]) for root in (jpeg_tree, copied)}
    assert identity[jpeg_tree] == identity[copied] and identity[jpeg_tree].startswith(f"{N_TRAIN} files of ")
    first = sorted(p for p in (copied / "train").rglob("*") if p.is_file())[0]
    first.write_bytes(first.read_bytes() + b"\0")
    assert files_identity(copied / "train", scan_split(copied / "train")[1]) != identity[jpeg_tree]
