from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from training.data import tensors as data_module
from training.data import DataError, TensorLoader, fashion_mnist_dir
from training.data.tensors import _read_idx


def _write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_reads_what_was_written(tmp_path, gz):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    path = tmp_path / ("x.gz" if gz else "x")
    _write_idx(path, array, gz)
    assert np.array_equal(_read_idx(path), array)


def test_idx_reader_decompresses_once_per_content_and_rereads_a_changed_file(tmp_path, monkeypatch):
    """The decompressed bytes are remembered by the compressed ones: a file rewritten in place (same
    size, within the same clock tick) is read anew, and an array handed out is the caller's own."""
    path, first, second = tmp_path / "x.gz", np.full((3, 4), 7), np.full((3, 4), 9)
    decompressions = []
    monkeypatch.setattr(gzip, "decompress", lambda data, real=gzip.decompress: decompressions.append(1) or real(data))
    data_module._gunzip.cache_clear()
    _write_idx(path, first)
    a = _read_idx(path)
    a[:] = 0  # the caller's copy
    assert np.array_equal(_read_idx(path), first) and len(decompressions) == 1
    size = path.stat().st_size
    _write_idx(path, second)
    assert path.stat().st_size == size and np.array_equal(_read_idx(path), second) and len(decompressions) == 2


def test_idx_reader_rejects_truncated_files(tmp_path):
    path = tmp_path / "x"
    _write_idx(path, np.zeros((4, 5)), gz=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated"):
        _read_idx(path)


def test_fashion_mnist_from_data_root(tmp_path):
    for split, n in (("train", 6), ("t10k", 4)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", np.random.default_rng(0).integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    splits, spec, _ = data_module.load_fashion_mnist(str(tmp_path))
    x, y = splits["train"]
    assert x.shape == (6, 1, 28, 28) and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert abs(x.mean().item()) < 1e-5 and abs(x.std().item() - 1) < 1e-4  # normalised by train stats
    pixels = np.random.default_rng(0).integers(0, 256, (6, 28, 28)) / 255  # the training images written above
    assert spec.mean == [pytest.approx(pixels.mean(), abs=1e-6)] and spec.std == [pytest.approx(pixels.std(ddof=1), abs=1e-6)]
    assert (spec.channels, spec.size, spec.crop_ratio, spec.class_names[9]) == (1, 28, None, "Ankle boot")


def test_missing_fashion_mnist_says_how_to_provide_it(tmp_path):
    with pytest.raises(DataError) as info:
        fashion_mnist_dir(str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "nowhere" in message and "apt-get install dataset-fashion-mnist" in message and "data.root" in message


def test_tensor_loader_shards_cover_the_epoch_once_and_differ_per_epoch():
    x = torch.arange(103).float()[:, None]
    y = torch.arange(103)
    loaders = [TensorLoader(x, y, 8, shuffle=True, seed=3, rank=r, world_size=2, drop_last=True) for r in range(2)]
    seen = [torch.cat([b[1] for b in loader]) for loader in loaders]
    assert len(seen[0]) == len(seen[1]) == 48  # 51 per rank, 6 full batches of 8
    assert not set(seen[0].tolist()) & set(seen[1].tolist())
    for loader in loaders:
        loader.set_epoch(1)
    assert not torch.equal(torch.cat([b[1] for b in loaders[0]]), seen[0])
    loaders[0].set_epoch(0)
    assert torch.equal(torch.cat([b[1] for b in loaders[0]]), seen[0])  # an epoch's order is reproducible


def test_tensor_loader_evaluation_keeps_every_example_once():
    x, y = torch.zeros(11, 1), torch.arange(11)
    parts = [torch.cat([b[1] for b in TensorLoader(x, y, 4, shuffle=False, rank=r, world_size=3)]) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == list(range(11))


def _damaged_copy(tmp_path, damage: str):
    """The real Fashion-MNIST files copied, the test labels damaged: ``truncated`` (half the gzip
    stream), ``not-gzip`` (plain text named .gz), ``empty``, ``crc`` (one byte of the stream flipped)."""
    import shutil

    from training.data.tensors import DEBIAN_FASHION_MNIST

    folder = tmp_path / "fmnist"
    shutil.copytree(DEBIAN_FASHION_MNIST, folder)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "not-gzip": b"this is not a gzip file\n", "empty": b"",
                      "crc": data[:-12] + bytes([data[-12] ^ 0xFF]) + data[-11:]}[damage])
    return folder, path


@pytest.mark.parametrize("damage, reason", [("truncated", "EOFError"), ("not-gzip", "BadGzipFile"), ("empty", "is empty, not an IDX file"),
                                            ("crc", "BadGzipFile")])
def test_a_damaged_fashion_mnist_file_is_named_with_how_to_get_it_again(tmp_path, damage, reason):
    folder, path = _damaged_copy(tmp_path, damage)
    with pytest.raises(DataError, match=rf"{path}.*{reason}.*get it again \(Debian: sudo apt-get install --reinstall dataset-fashion-mnist"):
        data_module.load_fashion_mnist(str(folder))


def test_a_fifo_in_place_of_an_idx_file_is_refused_not_waited_on(tmp_path):
    """A named pipe where the training images should be: reading it waited forever (the time-out here
    is what fails without the check)."""
    import os
    import subprocess
    import sys

    from tests.e2e import REPO, env

    folder, _ = _damaged_copy(tmp_path, "empty")
    images = folder / "train-images-idx3-ubyte.gz"
    images.unlink()
    os.mkfifo(images)
    probe = f"from training.data import load_fashion_mnist\nload_fashion_mnist({str(folder)!r})"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"DataError: {images} is not a regular file (a FIFO, a socket or a device)" in result.stderr


def test_train_py_on_a_damaged_file_exits_2_with_one_sentence(tmp_path):
    from tests.e2e import run_train

    folder, path = _damaged_copy(tmp_path, "truncated")
    result = run_train(tmp_path / "run", f"data.root={folder}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {path} cannot be read (EOFError" in result.stderr
