"""The checkpoint file: a plain torch.save file of tensors and plain values, read with
weights_only=True, whose content digest catches every byte change that alters its content."""

from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from training.checkpoint import OLD_MAGIC, CheckpointError, read_checkpoint, rng_state, save_atomic, set_rng_state


def _payload() -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "model": {"w": torch.randn(12, 8, generator=g), "b": torch.zeros(3), "n": torch.tensor(7)},
        "masks": [torch.rand(12, 8, generator=g) > 0.5, None],
        "epoch": 3, "lr": 0.05, "name": "run", "history": [{"loss": 0.5, "acc": 0.9}], "flag": True,
    }


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_a_checkpoint_is_a_plain_torch_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_atomic(_payload(), path)
    plain = torch.load(path, weights_only=True)
    assert _same({k: plain[k] for k in _payload()}, _payload())
    assert _same({k: v for k, v in read_checkpoint(path).items() if k in _payload()}, _payload())


def test_no_changed_byte_goes_through_with_a_changed_content(tmp_path):
    """Every single-bit change of the file: refused as corrupt, or read back with exactly the same
    content (the zip container has bytes that carry none: padding, names of records, timestamps)."""
    path = tmp_path / "checkpoint.pt"
    save_atomic(_payload(), path)
    raw = path.read_bytes()
    refused = 0
    for i in range(len(raw)):
        damaged = bytearray(raw)
        damaged[i] ^= 1 << (i % 8)
        path.write_bytes(bytes(damaged))
        try:
            loaded = read_checkpoint(path)
        except CheckpointError as error:
            assert any(reason in str(error) for reason in ("corrupt", "not a checkpoint", "could run code"))
            refused += 1
            continue
        assert _same({k: loaded[k] for k in _payload()}, _payload()), f"byte {i}: a changed content was accepted"
    assert refused > len(raw) // 3  # most bytes matter; the rest carry no content
    path.write_bytes(raw[:-100])
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(path)


class _Marker:
    """Unpickling this would create a file (what an attacker's checkpoint would do)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "ham-checkpoint-2", "model": _Marker(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):  # what plain weights_only loading says
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError, match="could run code"):
        read_checkpoint(path)
    assert not marker.exists()


class _Shell:
    """Unpickling this would run a shell command (``os.system``, a module torch blocks by name)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_a_blocked_global_is_named_as_code_and_a_file_of_another_format_as_not_a_checkpoint(tmp_path):
    """torch names a blocked module's global "unsupported GLOBAL posix.system" (not "Unsupported
    global"): still a refusal that says the file could run code, not a checksum mismatch. A plain
    pickle and a text file are not torch.save's container: said so, and neither is unpickled."""
    marker = tmp_path / "pwned"
    shell = tmp_path / "shell.pt"
    torch.save({"format": "ham-checkpoint-2", "model": _Shell(f"touch {marker}")}, shell)
    with pytest.raises(pickle.UnpicklingError, match="unsupported GLOBAL"):
        torch.load(shell, weights_only=True)
    with pytest.raises(CheckpointError, match="could run code") as refused:
        read_checkpoint(shell)
    assert "checksum" not in str(refused.value)
    plain_pickle, text = tmp_path / "plain.pkl", tmp_path / "notes.txt"
    plain_pickle.write_bytes(pickle.dumps({"model": _Shell(f"touch {marker}")}))
    text.write_text("hello, this is text\n")
    for path in (plain_pickle, text):
        with pytest.raises(CheckpointError, match="is not a checkpoint written by train.py: it is not the zip container") as refused:
            read_checkpoint(path)
        assert "could run code" not in str(refused.value) and "checksum" not in str(refused.value)
    assert not marker.exists()


def test_a_payload_with_other_objects_cannot_be_saved(tmp_path):
    with pytest.raises(TypeError, match="only tensors, numbers, strings"):
        save_atomic({"model": _Marker(tmp_path / "x")}, tmp_path / "checkpoint.pt")
    assert not (tmp_path / "checkpoint.pt").exists()


def test_the_earlier_format_is_named(tmp_path):
    path = tmp_path / "checkpoint.pt"
    buffer = io.BytesIO()
    torch.save({"model": {}}, buffer)
    path.write_bytes(OLD_MAGIC + b"0" * 64 + b"\n" + buffer.getvalue())
    with pytest.raises(CheckpointError, match="earlier version of this repository"):
        read_checkpoint(path)


def test_rng_states_round_trip_as_tensors_and_plain_values(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in numpy's legacy state
    path = tmp_path / "checkpoint.pt"
    save_atomic({"rng": rng_state()}, path)
    expected = (torch.rand(3), np.random.standard_normal(3), np.random.rand(), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(read_checkpoint(path)["rng"])
    again = (torch.rand(3), np.random.standard_normal(3), np.random.rand(), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]
