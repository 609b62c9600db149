"""A named pipe (FIFO) where a user-given file should be is refused in one sentence, never read: a
reader would wait on it forever. Each probe runs in its own process with a time-out, which is what
fails without the check. (The records' and the IDX files' cases: test_damaged_records.py, test_data.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e import REPO, env


def _probe(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)


def test_a_calibration_file_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "calibration.yaml"
    os.mkfifo(fifo)
    result = _probe("from training.config import compose_config\nfrom training.presets import apply_preset\n"
                    f"apply_preset(compose_config(['+experiment=str_ham', 'setting=small', 'sparsity.calibration={fifo}']))")
    assert result.returncode == 1
    assert f"sparsity.calibration={fifo} is not valid: {fifo} cannot be read as a calibration file (it is not a regular file" in result.stderr


@pytest.mark.parametrize("name", ["dataset.json", "train.beton"])
def test_an_ffcv_folder_with_a_fifo_is_refused(tmp_path, name):
    pytest.importorskip("ffcv")
    for other in ("train.beton", "val.beton"):
        (tmp_path / other).write_bytes(b"")
    (tmp_path / name).unlink(missing_ok=True)
    os.mkfifo(tmp_path / name)
    result = _probe("import torch\nfrom omegaconf import OmegaConf\nfrom training.data.ffcv_loader import build_ffcv_data\n"
                    f"build_ffcv_data(OmegaConf.create({{'root': {str(tmp_path)!r}}}), 8, 8, 0, 0, 1, torch.device('cpu'))")
    assert result.returncode == 1
    assert f"DataError: {tmp_path / name} is not a regular file (a FIFO, a socket, a device or a directory)" in result.stderr


def test_an_image_folder_with_a_fifo_named_as_an_image_is_refused_naming_it(tmp_path):
    """It used to be skipped silently (so a tree's image count could change without a word)."""
    from training.data.base import DataError
    from training.data.imagefolder import scan_split

    (tmp_path / "train" / "bag").mkdir(parents=True)
    (tmp_path / "train" / "bag" / "a.jpg").write_bytes(b"\xff\xd8 an image")
    assert len(scan_split(tmp_path / "train")[1]) == 1
    os.mkfifo(tmp_path / "train" / "bag" / "b.jpg")
    with pytest.raises(DataError, match=f"{tmp_path / 'train' / 'bag' / 'b.jpg'} is not a regular file .* though named as an image"):
        scan_split(tmp_path / "train")
