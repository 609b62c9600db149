import os

import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)


import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: the shared JPEG data set: 3000 training and 1000 validation images (training/data/sample_jpegs.py)
N_TRAIN, N_VAL = 3000, 1000


@pytest.fixture(scope="session")
def jpeg_tree(tmp_path_factory) -> Path:
    from training.data.sample_jpegs import make_jpeg_tree

    return make_jpeg_tree(tmp_path_factory.mktemp("jpeg") / "tree", N_TRAIN, N_VAL)


@pytest.fixture(scope="session")
def beton_dir(jpeg_tree, tmp_path_factory) -> Path:
    """train.beton/val.beton written from ``jpeg_tree`` by the writer script, in a real process."""
    out = tmp_path_factory.mktemp("beton")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "write_ffcv.py"), str(jpeg_tree), str(out), "--workers", "2"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out
