"""RunLock on a directory that a killed run left its ``run.lock`` in (the end-to-end cases are in
test_train_e2e.py: a real killed run, refusals, a second run while the first trains)."""

from __future__ import annotations

import os

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
