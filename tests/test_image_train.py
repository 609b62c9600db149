"""train.py on real image files: FFCV (.beton written from real JPEGs) and the ImageFolder fallback;
learning, progressive resizing, kill-and-resume, two-process DDP, an ImageNet experiment."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tests import launch
from tests.conftest import N_VAL
from tests.e2e import REPO, assert_resume_is_bit_identical, env, read_history, read_summary, run_train, torchrun, torchrun_failure

pytestmark = pytest.mark.slow
#: the small CNN on the 64 px images, progressive resizing 32 -> 64 -> 96 px over three epochs
IMAGES = ["data.train_subset=null", "data.test_subset=null", "model=cnn", "data.workers=2", "data.min_res=32", "data.max_res=96", "data.start_ramp_epoch=0",
          "data.end_ramp_epoch=2", "data.val_res=64", "trainer.batch_size=32", "trainer.eval_batch_size=250"]


def ffcv(root) -> list[str]:
    return ["data=ffcv_imagenet", f"data.root={root}", "data.num_classes=10", *IMAGES]


def test_ffcv_run_learns_in_one_short_epoch(tmp_path, beton_dir):
    # the data path alone (HAM's small-setting α is chosen for 10 Fashion-MNIST epochs, not one short epoch
    # of these images: 0.40 at α=20, 0.28 at α=50, 0.49 without HAM, measured here)
    result = run_train(tmp_path, *ffcv(beton_dir), "model=lenet5", "data.min_res=64", "data.max_res=64", "optimizer.lr=0.02", "ham=disabled")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(tmp_path)
    assert summary["test_acc"] > 0.4, summary["test_acc"]  # chance: 0.1
    assert summary["test_examples"] == N_VAL
    spec = json.loads((tmp_path / "model.json").read_text())["input"]  # how the exported model was evaluated
    assert spec["class_names"] == json.loads((beton_dir / "dataset.json").read_text())["classes"]
    assert (spec["size"], spec["crop_ratio"], spec["std"]) == (64, 0.875, [0.229, 0.224, 0.225]) and "INTER_AREA" in spec["resample"]


@pytest.mark.parametrize("source", ["ffcv", "imagefolder"])
def test_kill_and_resume_is_bit_identical_with_progressive_resizing(tmp_path, source, beton_dir, jpeg_tree):
    data = ffcv(beton_dir) if source == "ffcv" else ["data=imagefolder", f"data.root={jpeg_tree}", *IMAGES]
    # two epochs, 32 then 64 px: killed after the first, resumed at the second's resolution; evaluated
    # once, at the end, on 32 px images (a 96 px epoch and the evaluations were most of this test's time)
    history = assert_resume_is_bit_identical(
        tmp_path, [*data, "trainer.epochs=2", "data.max_res=64", "data.end_ramp_epoch=1", "trainer.max_steps_per_epoch=10",
                   "trainer.eval_every=2", "data.val_res=32"], epochs=2
    )
    assert [h["resolution"] for h in history] == [32, 64]


def test_two_ranks_through_ffcv_keep_identical_parameters_and_count_each_image_once(tmp_path, beton_dir):
    overrides = [*ffcv(beton_dir), "trainer.epochs=1", "trainer.max_steps_per_epoch=20", "trainer.progress=false",
                 "logger=disabled", "trainer.threads=1", "data.workers=1"]
    result = torchrun(str(REPO / "tests" / "ddp_worker.py"), str(tmp_path), *overrides)
    assert result.returncode == 0, torchrun_failure(result.stderr)
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    summary = read_summary(tmp_path)
    assert summary["world_size"] == 2 and summary["test_examples"] == N_VAL


def test_an_imagenet_experiment_runs_on_the_files(tmp_path, beton_dir):
    """The ResNet-50 recipe (+experiment=rigl_ham: bf16, channels_last, RiGL + HAM) with only the
    data root and a CPU-sized run given."""
    command = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={tmp_path}", "+experiment=rigl_ham", f"data.root={beton_dir}",
               "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "trainer.batch_size=8", "data.val_res=64", "data.workers=2", "logger=disabled"]
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(tmp_path)
    assert summary["config"]["model"]["name"] == "resnet50" and summary["test_examples"] == N_VAL
    assert abs(summary["sparsity"] - 0.9) < 0.01
    assert read_history(tmp_path)[0]["resolution"] == 160


def test_imagefolder_checks_every_image_before_training_and_names_the_bad_ones(tmp_path, jpeg_tree):
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(jpeg_tree, tree)
    truncated = sorted((tree / "train" / "bag").iterdir())[3]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    text = tree / "val" / "coat" / "notes.jpg"
    text.write_text("not an image\n")
    result = run_train(tmp_path / "run", "data=imagefolder", f"data.root={tree}", *IMAGES)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"error: 1 unreadable image(s) in {tree / 'train'}: {truncated} (OSError" in result.stderr
    assert "epoch 1" not in result.stdout  # stopped before training
    truncated.unlink()  # with the training split mended, the text file in val is named
    result = run_train(tmp_path / "run", "data=imagefolder", f"data.root={tree}", *IMAGES)
    assert result.returncode == 2 and f"error: 1 unreadable image(s) in {tree / 'val'}: {text} (UnidentifiedImageError" in result.stderr
