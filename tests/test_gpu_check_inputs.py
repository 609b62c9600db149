"""The GPU check refuses what it cannot do before any tier runs (an unknown tier, a report path that is a
directory or cannot be written), and tier B names a wheel it cannot unpack instead of a traceback."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECK = [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick"]


@pytest.mark.parametrize("arguments, message", [
    (["--tiers", "Z"], "--tiers 'Z' is not valid: there is no tier Z; choose from ABC"),
    (["--tiers", ""], "--tiers '' is not valid: it names no tier"),
    (["--output", "{tmp}"], "--output {tmp} is not valid: it is a directory"),
    (["--output", "/proc/no/report.md"], "--output /proc/no/report.md is not valid: it cannot be written there"),
    (["--output", "{tmp}/file/report.md"], "--output {tmp}/file/report.md is not valid: {tmp}/file is a file"),
], ids=["unknown-tier", "no-tier", "output-directory", "output-unwritable", "output-under-a-file"])
def test_a_check_it_cannot_do_is_refused_before_any_tier_runs(tmp_path, arguments, message):
    (tmp_path / "file").write_text("x")
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    result = subprocess.run([*CHECK, *arguments], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert message.format(tmp=tmp_path) in result.stderr
    assert "== tier" not in result.stdout and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_damaged_wheel_is_named_in_one_sentence(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_tier_b", REPO / "benchmarks" / "gpu_tier_b.py")
    tier_b = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tier_b)  # type: ignore[union-attr]
    monkeypatch.setattr(tier_b, "TRAINER_MODULES", ("a_module_this_python_lacks",))  # as on a bare GPU machine
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for package in (*tier_b.TRAINER_PACKAGES, "antlr4_python3_runtime", "packaging"):
        (wheels / f"{package.replace('-', '_')}-1.0-py3-none-any.whl").write_bytes(b"not a zip archive")
    with pytest.raises(tier_b.TierFailed, match=r"PyYAML-1\.0-py3-none-any\.whl cannot be unpacked \(File is not a zip file\): "
                                                 r"it is no wheel, or a damaged one; run scripts/gpu_wheels.sh"):
        tier_b.trainer_path(wheels, tmp_path / "site")
