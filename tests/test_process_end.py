"""How a process that ran a process group ends (``training.distributed.end_process``): its atexit
handlers run and its output is flushed, its exit status is kept, and the interpreter's finalization,
in which gloo's worker threads can abort a completed run, is skipped."""

from __future__ import annotations

import re

import pytest

from tests.e2e import REPO, torchrun
from training.distributed import exit_status

WORKER = str(REPO / "tests" / "process_ending_worker.py")


@pytest.mark.parametrize("code,status", [(None, 0), (0, 0), (3, 3), ("a message", 1)])
def test_the_exit_status_is_the_one_sys_exit_gives(code, status, capsys):
    assert exit_status(code) == status
    assert capsys.readouterr().err == ("a message\n" if isinstance(code, str) else "")


def said(result) -> list[str]:
    return sorted(re.findall(r"rank [01]: [a-z ]+", result.stdout + result.stderr))


@pytest.mark.slow
def test_a_rank_ends_after_its_atexit_handlers_without_the_finalization():
    ended = torchrun(WORKER, "end_process", "0", timeout=300)
    assert ended.returncode == 0, ended.stderr[-3000:]
    assert said(ended) == ["rank 0: atexit ran", "rank 0: buffered", "rank 1: atexit ran", "rank 1: buffered"]
    assert "terminate called" not in ended.stderr
    plain = torchrun(WORKER, "plain", "0", timeout=300)  # the same script ending as scripts do: finalized
    assert {"rank 0: finalized", "rank 1: finalized"} <= set(said(plain)) or "terminate called" in plain.stderr


@pytest.mark.slow
def test_a_ranks_exit_status_reaches_torchrun():
    result = torchrun(WORKER, "end_process", "3", timeout=300)
    assert result.returncode != 0
    assert re.search(r"rank\s*: 1 .*\n\s*exitcode\s*: 3 ", result.stderr), result.stderr[-3000:]
