"""scripts/write_ffcv.py on real JPEGs: round trip through FFCV, the storage settings, bad inputs,
a killed write. FFCV must be installed (``make setup``): these tests are not skipped without it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from ffcv.fields.basics import IntDecoder
from ffcv.fields.rgb_image import SimpleRGBImageDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.reader import Reader
from PIL import Image

from tests import launch
from tests.conftest import N_VAL, REPO
from tests.e2e import tmpfs
from training.data.sample_jpegs import CLASSES, make_jpeg_tree

WRITER = [sys.executable, str(REPO / "scripts" / "write_ffcv.py")]


def write(source: Path, out: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return launch.run([*WRITER, str(source), str(out), "--workers", "2", *args], env=launch.environment(), capture_output=True, text=True,
                      timeout=timeout)


def source_images(tree: Path, split: str) -> list[tuple[np.ndarray, int]]:
    """The tree's images in the writer's order (classes sorted, files sorted), decoded by PIL."""
    out = []
    for label, name in enumerate(sorted(CLASSES)):
        for path in sorted((tree / split / name).iterdir()):
            out.append((np.asarray(Image.open(path).convert("RGB")), label))
    return out


def test_every_validation_image_and_label_round_trips(jpeg_tree, beton_dir):
    expected = source_images(jpeg_tree, "val")
    loader = Loader(str(beton_dir / "val.beton"), batch_size=100, num_workers=1, order=OrderOption.SEQUENTIAL, drop_last=False,
                    pipelines={"image": [SimpleRGBImageDecoder()], "label": [IntDecoder()]})
    images = np.concatenate([np.array(x) for x, _ in loader])
    labels = np.concatenate([np.array(y).ravel() for _, y in loader])
    assert len(images) == len(expected) == N_VAL
    assert labels.tolist() == [label for _, label in expected]
    modes = Reader(str(beton_dir / "val.beton")).metadata["f0"]["mode"]  # 0: JPEG, 1: raw
    assert 0.4 < (modes == 0).mean() < 0.6  # half of the images compressed
    for (source, _), image, mode in zip(expected, images, modes):
        assert image.shape == source.shape == (64, 64, 3)
        diff = np.abs(image.astype(int) - source.astype(int))
        if mode == 1:
            assert diff.max() == 0  # raw pixels: exact
        else:  # JPEG of quality 90 (4:2:0 chroma): close to the source, closer to our own re-encoding
            assert 10 * np.log10(255**2 / (diff**2).mean()) > 27  # PSNR in dB (measured here: 29-38)
            bgr = cv2.imdecode(cv2.imencode(".jpg", source[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)
            ours = np.abs(image.astype(int) - bgr[:, :, ::-1].astype(int))  # FFCV decodes with libjpeg-turbo's fast DCT
            assert ours.mean() < 1.5 and ours.max() <= 10  # measured here: mean <= 1.1, max 6
    meta = json.loads((beton_dir / "dataset.json").read_text())
    assert meta["classes"] == sorted(CLASSES) and meta["splits"]["val"]["images"] == N_VAL
    assert meta["splits"]["train"]["skipped"] == 0


def stored_bytes(path: Path) -> int:
    return int(Reader(str(path)).alloc_table["size"].sum())  # the file itself grows in whole pages


def test_storage_options_are_applied(tmp_path):
    tree = make_jpeg_tree(tmp_path / "tree", 60, 30)
    result = write(tree, tmp_path / "out", "--max-side", "48", "--compress-probability", "1", "--jpeg-quality", "50")
    assert result.returncode == 0, result.stderr[-2000:]
    metadata = Reader(str(tmp_path / "out" / "train.beton")).metadata["f0"]
    assert (metadata["width"] == 48).all() and (metadata["height"] == 48).all() and (metadata["mode"] == 0).all()
    low = stored_bytes(tmp_path / "out" / "train.beton")
    assert write(tree, tmp_path / "raw", "--compress-probability", "0").returncode == 0
    assert (Reader(str(tmp_path / "raw" / "train.beton")).metadata["f0"]["mode"] == 1).all()
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["settings"] == {"max_side": 48, "jpeg_quality": 50, "compress_probability": 1.0}
    assert low < stored_bytes(tmp_path / "raw" / "train.beton") / 3  # JPEG at quality 50 vs raw pixels


def test_refuses_to_overwrite_without_force(tmp_path):
    tree = make_jpeg_tree(tmp_path / "tree", 40, 20)
    assert write(tree, tmp_path / "out").returncode == 0
    before = (tmp_path / "out" / "train.beton").read_bytes()
    again = write(tree, tmp_path / "out")
    assert again.returncode == 2 and "--force" in again.stderr and "already exist" in again.stderr
    assert (tmp_path / "out" / "train.beton").read_bytes() == before
    assert write(tree, tmp_path / "out", "--force").returncode == 0


@pytest.mark.parametrize("case", ["missing", "empty", "no_class_folders", "empty_class", "val_classes_differ"])
def test_bad_folders_get_a_clear_message_and_nothing_is_written(tmp_path, case):
    tree = tmp_path / "tree"
    if case != "missing":
        make_jpeg_tree(tree, 40, 20)
    if case == "empty":
        shutil.rmtree(tree / "train")
        (tree / "train").mkdir()
    if case == "no_class_folders":
        shutil.rmtree(tree / "val")
        (tree / "val").mkdir()
        (tree / "val" / "loose.txt").write_text("x")
    if case == "empty_class":
        for f in (tree / "train" / "bag").iterdir():
            f.unlink()
    if case == "val_classes_differ":
        shutil.rmtree(tree / "val" / "boot")
    result = write(tree, tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    expected = {"missing": "does not exist", "empty": "no class folders", "no_class_folders": "no class folders",
                "empty_class": "hold no images (bag)", "val_classes_differ": "differ from those of the training split"}[case]
    assert expected in result.stderr
    assert not list((tmp_path / "out").glob("*.beton")) if (tmp_path / "out").exists() else True


def test_an_unreadable_image_stops_the_write_unless_skipped(tmp_path):
    tree = make_jpeg_tree(tmp_path / "tree", 60, 20)
    bad = sorted((tree / "train" / "coat").iterdir())[0]
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])  # a truncated JPEG
    (tree / "val" / "bag" / "notes.jpg").write_text("not an image")
    result = write(tree, tmp_path / "out")
    assert result.returncode == 2 and "unreadable image" in result.stderr and str(bad) in result.stderr and "--skip-bad" in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    skipped = write(tree, tmp_path / "out", "--skip-bad")
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert meta["splits"]["train"] == {**meta["splits"]["train"], "images": 59, "skipped": 1, "skipped_files": [str(bad)]}
    assert meta["splits"]["val"]["images"] == 20 and meta["splits"]["val"]["skipped"] == 1
    assert Reader(str(tmp_path / "out" / "train.beton")).num_samples == 59


def test_a_killed_write_leaves_no_beton(jpeg_tree, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([*WRITER, str(jpeg_tree), str(out), "--workers", "1", "--chunk-size", "10"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / "train.beton.partial"
    deadline = time.time() + 120
    while time.time() < deadline and not (partial.exists() and partial.stat().st_size > 0):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    subprocess.run(["pkill", "-9", "-f", str(out)], check=False)  # the writer's worker processes
    assert partial.exists(), "the write was not caught in the middle"
    assert not (out / "train.beton").exists() and not (out / "val.beton").exists()
    result = write(jpeg_tree, out)  # a new write starts over the leftover
    assert result.returncode == 0, result.stderr[-2000:]
    assert not partial.exists() and Reader(str(out / "train.beton")).num_samples == 3000


def _refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit code 2, one ``error:`` sentence with ``words``, no traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    message = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(message) == 1 and all(w in message[0] for w in words), result.stderr[-3000:]
    return message[0]


def test_an_output_that_is_a_file_is_refused_before_anything_is_read(jpeg_tree, tmp_path):
    existing = tmp_path / "out"
    existing.write_text("not a folder")
    _refused(write(jpeg_tree, existing), f"{existing} is a file, not a folder")
    _refused(write(jpeg_tree, existing / "below"), f"{existing} is a file, so the folder {existing / 'below'} cannot be created")
    assert existing.read_text() == "not a folder"


def test_a_read_only_file_system_is_named_also_when_the_output_folder_must_be_created(jpeg_tree, tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1M") as disk:
        _refused(write(jpeg_tree, disk), f"{disk} is on a read-only file system")
        _refused(write(jpeg_tree, disk / "new" / "out"), f"{disk} is on a read-only file system", f"{disk / 'new' / 'out'}")
        assert not any(disk.iterdir())


def test_a_full_disk_stops_the_writer_with_a_message_and_keeps_only_complete_files(jpeg_tree, beton_dir, tmp_path):
    """A real full tmpfs: FFCV's writer process fails with ENOSPC (FFCV's own loop then waits for it for
    ever); the writer stops with one sentence and keeps no partial file, nor a folder it created."""
    with tmpfs(tmp_path / "small", "size=1M") as disk:
        result = write(jpeg_tree, disk / "out", timeout=120)
        _refused(result, f"the disk holding {disk / 'out'} is full", "train.beton, which was not kept")
        assert "leaked shared_memory" not in result.stderr
        assert not any(disk.iterdir())
    train, val = (beton_dir / "train.beton").stat().st_size, (beton_dir / "val.beton").stat().st_size
    with tmpfs(tmp_path / "medium", f"size={train + val // 2}") as disk:  # the training split fits, the validation split does not
        result = write(jpeg_tree, disk / "out", timeout=120)
        _refused(result, "while writing val.beton, which was not kept", "(train.beton complete and kept)")
        assert sorted(p.name for p in (disk / "out").iterdir()) == ["dataset.json", "train.beton"]
        assert json.loads((disk / "out" / "dataset.json").read_text())["splits"].keys() == {"train"}
        labels = []
        for path in (disk / "out" / "train.beton", beton_dir / "train.beton"):  # a complete file: every image's label where it belongs
            loader = Loader(str(path), batch_size=500, num_workers=1, order=OrderOption.SEQUENTIAL, drop_last=False,
                            pipelines={"image": None, "label": [IntDecoder()]})
            labels.append(np.concatenate([np.array(y).ravel() for (y,) in loader]).tolist())
        assert len(labels[0]) == 3000 and labels[0] == labels[1]
