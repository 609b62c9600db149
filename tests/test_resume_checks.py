"""A resume trains on what the config says: the data that the checkpoint was trained on (wherever
they lie now), the optimizer settings that the config gives, and entries of the types train.py
writes. Real runs of train.py on Fashion-MNIST; the checkpoint is edited and re-digested with the
project's own function, as someone who changed it by hand could (the digest detects corruption,
not deliberate edits)."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # end-to-end: train.py in real processes

from tests.e2e import run_train, snapshot
from training.checkpoint import DIGEST_KEY, read_checkpoint, save_atomic
from training.data.tensors import FASHION_MNIST_FILES, fashion_mnist_dir


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One finished 1-epoch run on the Fashion-MNIST that the machine provides."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = run_train(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def copy_of_fashion_mnist(folder, shift_train_labels: bool = False):
    """The four IDX files copied, gzipped, into ``folder``; optionally with every training label
    moved to the next class (the same header and sizes, other content)."""
    source = fashion_mnist_dir(None)
    folder.mkdir()
    for images, labels in FASHION_MNIST_FILES.values():
        for stem in (images, labels):
            found = next(p for p in (source / f"{stem}.gz", source / stem) if p.exists())
            raw = gzip.decompress(found.read_bytes()) if found.suffix == ".gz" else found.read_bytes()
            if shift_train_labels and stem == "train-labels-idx1-ubyte":
                header, values = raw[:8], np.frombuffer(raw[8:], dtype=np.uint8)
                raw = header + ((values + 1) % 10).astype(np.uint8).tobytes()
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
    return folder


def edited(run_dir, target, edit):
    """A copy of ``run_dir`` in ``target`` whose checkpoint was changed by ``edit(payload)`` and
    written again with a valid digest."""
    shutil.copytree(run_dir, target)
    payload = read_checkpoint(target / "checkpoint.pt")
    edit(payload)
    save_atomic({k: v for k, v in payload.items() if k not in (DIGEST_KEY, "format")}, target / "checkpoint.pt")
    return target


def refusal(run_dir, *overrides: str) -> str:
    """The one error line of a resume that must be refused, after checking it changed nothing."""
    before = snapshot(run_dir)
    result = run_train(run_dir, *overrides)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert snapshot(run_dir) == before
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_a_resume_on_other_data_is_refused_naming_what_differs_and_moved_data_still_resume(finished_run, tmp_path):
    """The checkpoint records the data's identity (digests of the decoded IDX arrays, no path):
    a copy whose training labels are shifted by one is refused, naming the training labels and
    nothing else; an exact copy elsewhere resumes (the same command: the run is found finished)."""
    shifted = copy_of_fashion_mnist(tmp_path / "shifted", shift_train_labels=True)
    run_dir = tmp_path / "on-shifted"
    shutil.copytree(finished_run, run_dir)
    error = refusal(run_dir, f"data.root={shifted}")
    assert "was trained on other data than data.name=fashion_mnist at data.root=" in error
    assert "train labels: 60000 uint8, sha256 " in error
    assert "train images" not in error and "test labels" not in error  # only what differs

    moved = copy_of_fashion_mnist(tmp_path / "moved")
    run_dir = tmp_path / "on-moved"
    shutil.copytree(finished_run, run_dir)
    result = run_train(run_dir, f"data.root={moved}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stdout and "after epoch 1" in result.stdout


def test_a_checkpoint_whose_ham_alpha_was_changed_is_refused_naming_both_values(finished_run, tmp_path):
    """HAM's alpha set to 1e6 in the checkpoint, where the config gives 50 (and the fingerprint
    still matches): the resume does not train with it."""
    def set_alpha(payload):
        assert payload["optimizer"]["ham"]["alpha"] == 50.0  # the default that the config gives
        payload["optimizer"]["ham"]["alpha"] = 1e6

    run_dir = edited(finished_run, tmp_path / "alpha", set_alpha)
    error = refusal(run_dir)
    assert "holds optimizer settings that its configuration does not give (ham.alpha=1000000.0 where the config gives 50.0)" in error
    assert "checksum detects corruption, not deliberate edits" in error


def test_a_changed_hyperparameter_of_the_base_optimizer_is_refused(finished_run, tmp_path):
    def set_momentum(payload):
        payload["optimizer"]["param_groups"][0]["momentum"] = 0.5

    error = refusal(edited(finished_run, tmp_path / "momentum", set_momentum))
    assert "param group 0 momentum=0.5 where the config gives 0.9" in error


def test_an_entry_of_the_wrong_type_is_one_sentence_before_anything_is_loaded(finished_run, tmp_path):
    """``epoch: 'two'`` through train.py (exit 2, nothing changed); the other entries through the
    same check on the finished run's payload, in this process."""
    from training.checkpoint import CheckpointError, check_entries

    run_dir = edited(finished_run, tmp_path / "run", lambda payload: payload.__setitem__("epoch", "two"))
    assert "its entry epoch='two' is not a non-negative integer, as train.py writes it" in refusal(run_dir)
    for entry, value, meaning in (("global_step", -3, "a non-negative integer"), ("history", None, "a list"),
                                  ("method", [1, 2], "a mapping"), ("world_size", 0, "a positive integer")):
        payload = dict(read_checkpoint(finished_run / "checkpoint.pt"), **{entry: value})
        with pytest.raises(CheckpointError) as refused:
            check_entries(payload, finished_run / "checkpoint.pt")
        assert f"its entry {entry}={value!r} is not {meaning}, as train.py writes it" in str(refused.value)
    check_entries(read_checkpoint(finished_run / "checkpoint.pt"), finished_run / "checkpoint.pt")  # train.py's own passes


def test_sign_flip_state_that_does_not_fit_is_named(finished_run, tmp_path):
    run_dir = edited(finished_run, tmp_path / "flips", lambda payload: payload["sign_flips"].clear())
    assert "cannot be resumed: its sign_flips entry is not this run's (KeyError('counts')" in refusal(run_dir)
