"""RunLock on a directory that a killed run left its ``run.lock`` in (the end-to-end cases are in
test_train_e2e.py: a real killed run, refusals, a second run while the first trains)."""

from __future__ import annotations

import os

from tests import launch
from training.rundir import LOCK_INFO, RunLock


def test_a_killed_runs_lock_file_is_taken_over_and_given_back_as_it_was(tmp_path):
    stale = tmp_path / LOCK_INFO
    stale.write_bytes(b"pid 1 on elsewhere, started 2026-01-01 00:00:00\n")
    os.utime(stale, ns=(1_000_000_000, 2_000_000_000))
    lock = RunLock(tmp_path)
    assert lock.acquire() is None
    content = stale.read_bytes()
    assert content.startswith(f"pid {os.getpid()} on ".encode()) and b"\0" not in content  # written from the start of the file
    lock.give_back()  # a refused run
    assert (stale.stat().st_atime_ns, stale.stat().st_mtime_ns) == (1_000_000_000, 2_000_000_000)  # before reading it (atime)
    assert stale.read_bytes() == b"pid 1 on elsewhere, started 2026-01-01 00:00:00\n"
    again = RunLock(tmp_path)
    assert again.acquire() is None
    again.release()  # a run that ended: no file left
    assert not stale.exists()


def test_a_refused_run_in_a_directory_without_a_lock_file_leaves_none(tmp_path):
    lock = RunLock(tmp_path)
    assert lock.acquire() is None and (tmp_path / LOCK_INFO).exists()
    lock.give_back()
    assert not (tmp_path / LOCK_INFO).exists()


def test_a_directory_name_is_hydras_override_dirname_with_path_values_shortened():
    """Against Hydra's own ``get_overrides_dirname``: the same name for overrides without paths;
    a path value becomes its last name and a digest of the whole value, so that it adds no
    directory and cannot climb out of the root."""
    import hashlib

    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from training.rundir import job_dirname

    plain = ["trainer.epochs=2", "+experiment=rigl_ham", "ham.alpha=40", "data.mean=[0.1,0.2]", "logger=disabled", "model=lenet5"]
    exclude = ["experiment", "logger"]
    hydra_name = get_overrides_dirname(OverridesParser.create().parse_overrides(plain), exclude, ",", "=")
    assert job_dirname(plain, exclude) == hydra_name == "data.mean=[0.1,0.2],ham.alpha=40,model=lenet5,trainer.epochs=2"
    value = "../../../../../x"
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    named = job_dirname(["trainer.epochs=2", f"sparsity.calibration={value}", "model.timm_name=hf-hub:timm/resnet50.a1_in1k"], [])
    assert named == f"model.timm_name=resnet50.a1_in1k@{hashlib.sha256(b'hf-hub:timm/resnet50.a1_in1k').hexdigest()[:8]}," \
                    f"sparsity.calibration=x@{digest},trainer.epochs=2"
    assert "/" not in named and ".." not in named


def test_run_directories_stay_inside_outputs(tmp_path):
    """``name`` with ``..`` or an absolute path is refused (exit 2, nothing created) unless the
    directory is set explicitly; a path value in an override stays inside ``outputs/<name>/``."""
    import subprocess
    import sys

    from tests.e2e import REPO, SMALL, env

    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)

    def train(*overrides: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        return launch.run([sys.executable, str(REPO / "train.py"), *flags, *SMALL, "data.train_subset=256", "data.test_subset=256",
                           *overrides],
                              cwd=work, env=env(), capture_output=True, text=True, timeout=300)

    for name in ("../../x", str(tmp_path / "absolute")):
        result = train(f"name={name}")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"error: name={name} is not valid: the run directory is built from it" in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "work"]  # nothing made, inside or outside
    # swept: the sweep-level config holds only the first name; each name of the sweep is checked before any job runs
    sweep = work / "sweep" / "deep"
    os.environ["HAM_SWEPT_NAME"] = str(tmp_path / "from_env")
    try:
        for names, bad in (("ok,../../../x", "../../../x"), (f"ok,{tmp_path / 'abs'}", str(tmp_path / "abs")),
                           ("ok,${oc.env:HAM_SWEPT_NAME}", str(tmp_path / "from_env"))):
            result = train(f"name={names}", f"hydra.sweep.dir={sweep}", flags=("--multirun",))
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
            assert f"error: name={bad} is not valid: the run directory is built from it" in result.stderr
            assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "work"]  # not even the sweep directory
    finally:
        del os.environ["HAM_SWEPT_NAME"]
    result = train("sparsity.calibration=../../../../../x")
    assert result.returncode == 0, result.stderr[-2000:]
    [run_dir] = [p.parent for p in work.rglob("summary.json")]
    assert run_dir.parent == work / "outputs" / "default" and "sparsity.calibration=x@" in run_dir.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    explicit = train("name=../elsewhere", f"hydra.run.dir={tmp_path / 'chosen'}")
    assert explicit.returncode == 0 and (tmp_path / "chosen" / "summary.json").exists(), explicit.stderr[-2000:]
