"""The tests' fork server stands in for a fresh ``python script.py``: the same argv, working
directory, environment, signal handlers, streams and exit status as the real interpreter gives
(each probe runs both ways and the answers are compared)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import launch
from tests.e2e import env

PROBE = """
import json, os, signal, sys
names = ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGPIPE", "SIGHUP")
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "parent_pid": os.getppid(), "path0": sys.path[0], "main": __name__, "file": __file__,
    "env": {k: os.environ.get(k) for k in ("PROBE_VALUE", "WANDB_MODE", "SLURM_PROCID")},
    "handlers": {n: str(signal.getsignal(getattr(signal, n))) for n in names},
    "open_fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
}))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture
def probe(tmp_path):
    script = tmp_path / "scripts" / "probe.py"
    script.parent.mkdir()
    script.write_text(PROBE)
    return script


def _both(args, **kwargs):
    forked = launch.run(args, **kwargs)
    fresh = subprocess.run(args, **kwargs)
    return forked, fresh


def test_a_forked_child_sees_what_a_fresh_interpreter_sees(probe, tmp_path):
    environment = dict(env(), PROBE_VALUE="x y", SLURM_PROCID="1")
    environment.pop("WANDB_MODE")
    forked, fresh = _both([sys.executable, str(probe), "5", "--flag"], cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=120)
    assert forked.returncode == fresh.returncode == 5
    forked_view, fresh_view = json.loads(forked.stdout), json.loads(fresh.stdout)
    assert forked_view.pop("parent_pid") != os.getpid() == fresh_view.pop("parent_pid")  # the server's child, not ours
    assert forked_view == fresh_view
    assert fresh_view["env"] == {"PROBE_VALUE": "x y", "WANDB_MODE": None, "SLURM_PROCID": "1"}
    assert forked.stderr == fresh.stderr == "to stderr\n"


def test_a_relative_script_path_and_an_uncaught_exception(tmp_path):
    (tmp_path / "fails.py").write_text("def f():\n    raise ValueError('bad value')\nf()\n")
    forked, fresh = _both([sys.executable, "fails.py"], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert forked.returncode == fresh.returncode == 1
    assert forked.stderr == fresh.stderr and "ValueError: bad value" in fresh.stderr and 'File "' in fresh.stderr


PARALLEL = """
import sys, torch
torch.set_num_threads(2)
x = torch.ones(4_000_000)
print(float((x * 2).sum()), torch.get_num_threads())
"""


def test_a_forked_child_runs_parallel_torch_operations(tmp_path):
    """The server runs no torch operation itself: a child that inherits a started OpenMP pool hangs in
    its first parallel operation (a train.py run with ``trainer.threads=2`` did, until its time-out)."""
    (tmp_path / "parallel.py").write_text(PARALLEL)
    result = launch.run([sys.executable, "parallel.py"], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "8000000.0 2\n"), result.stderr


NUMBA_PARALLEL = """
import numba, numpy as np
from training.data import ffcv_loader  # FFCV imported: in the server's children, without numba's pool started

@numba.njit(parallel=True)
def doubled_sum(a):
    s = 0.0
    for i in numba.prange(a.shape[0]):
        s += 2 * a[i]
    return s

numba.set_num_threads(2)
print(doubled_sum(np.ones(4_000_000)), numba.get_num_threads())
"""


def test_a_forked_child_runs_parallel_numba_loops_after_ffcv_is_imported(tmp_path):
    """The server imports FFCV without starting numba's thread pool (FFCV's import starts it): a
    child of a server that had started an OpenMP pool would hang in its first parallel loop, as the
    FFCV loader's pipeline runs one with ``data.workers=2``."""
    (tmp_path / "numba_parallel.py").write_text(NUMBA_PARALLEL)
    result = launch.run([sys.executable, "numba_parallel.py"], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, "8000000.0 2\n"), result.stderr


def _signalled(start, script, marker, sig) -> tuple[int, str, str]:
    """Start ``script`` with ``start``, send ``sig`` once it is up; its status, stdout and stderr."""
    process = start([sys.executable, str(script), str(marker)], cwd=script.parent, env=env(), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not marker.exists():
        assert time.time() < deadline and process.poll() is None, process.stderr
        time.sleep(0.02)
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_signals_reach_the_child_and_its_status_says_so(tmp_path):
    script = tmp_path / "waits.py"
    script.write_text("import pathlib, sys, time\nprint('up')\npathlib.Path(sys.argv[1]).touch()\ntime.sleep(60)\n")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGKILL):
        forked = _signalled(launch.start, script, tmp_path / f"forked-{sig.name}", sig)
        fresh = _signalled(subprocess.Popen, script, tmp_path / f"fresh-{sig.name}", sig)
        assert forked[0] == fresh[0] == -sig, sig
        assert forked[1] == fresh[1], sig
        if sig == signal.SIGINT:  # CPython reports the KeyboardInterrupt, then dies by SIGINT
            assert "KeyboardInterrupt" in forked[2] and "KeyboardInterrupt" in fresh[2]
        else:
            assert forked[2] == fresh[2] == "", sig


def test_a_timeout_kills_the_child(tmp_path):
    (tmp_path / "waits.py").write_text("import time\ntime.sleep(60)\n")
    started = time.time()
    with pytest.raises(subprocess.TimeoutExpired):
        launch.run([sys.executable, str(tmp_path / "waits.py")], cwd=tmp_path, env=env(), capture_output=True, timeout=1)
    assert time.time() - started < 30


def test_commands_it_cannot_stand_in_for_start_a_fresh_interpreter(probe, tmp_path):
    """An environment that changes what is read at import, ``-c``/``-m`` commands and keywords the
    server does not take start a plain subprocess."""
    for args, kwargs in (([sys.executable, str(probe), "0"], {"env": dict(env(), PYTHONHASHSEED="3")}),
                         ([sys.executable, str(probe), "0"], {"env": dict(env(), OMP_NUM_THREADS="1")}),
                         ([sys.executable, "-c", "print()"], {"env": env()}),
                         ([sys.executable, str(probe), "0"], {"env": env(), "stdin": subprocess.DEVNULL})):
        process = launch.start(args, cwd=tmp_path, stdout=subprocess.DEVNULL, **kwargs)
        assert isinstance(process, subprocess.Popen), args
        process.wait(timeout=60)
    process = launch.start([sys.executable, str(probe), "0"], cwd=tmp_path, env=dict(env(), WANDB_MODE="offline"), stdout=subprocess.DEVNULL)
    assert isinstance(process, launch.ForkedProcess) and process.wait(timeout=60) == 0  # read at run time: forked


FIRST_COMMAND_DIFFERS = """
import subprocess, sys
from tests import launch
probe = sys.argv[1]
odd = launch.start([sys.executable, probe, "0"], env=dict(launch.environment(), PYTHONHASHSEED="3"), stdout=subprocess.DEVNULL)
plain = launch.start([sys.executable, probe, "0"], env=launch.environment(), stdout=subprocess.DEVNULL)
print(type(odd).__name__, odd.wait(timeout=60), type(plain).__name__, plain.wait(timeout=60), launch.fresh_starts())
"""


def test_the_server_does_not_take_the_environment_of_the_first_command_it_is_asked_for(probe, tmp_path):
    """In a new pytest process whose first command sets ``PYTHONHASHSEED``, that command starts fresh
    and the next, in the tests' environment, is forked: the server runs in the tests' environment, not
    in the first command's (where every later command would differ from it and start fresh)."""
    (tmp_path / "first.py").write_text(FIRST_COMMAND_DIFFERS)
    result = subprocess.run([sys.executable, str(tmp_path / "first.py"), str(probe)], cwd=tmp_path, env=env(), capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 4) == ["Popen", "0", "ForkedProcess", "0", "{'environment differs in PYTHONHASHSEED': 1}\n"]


PARENT = """
import json, os, subprocess, sys
probe = os.path.join("scripts", "probe.py")
with open("child.out", "w") as out:
    subprocess.run([sys.executable, probe, "0", "child"], cwd=sys.argv[1], stdout=out, stderr=subprocess.STDOUT)
failed = subprocess.run([sys.executable, probe, "4"], cwd=sys.argv[1], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
try:
    subprocess.run([sys.executable, probe, "3"], cwd=sys.argv[1], check=True, capture_output=True, text=True)
except subprocess.CalledProcessError as error:
    checked = [error.returncode, error.stderr]
print(json.dumps({"pid": os.getpid(), "failed": failed.returncode, "checked": checked}))
"""


def test_a_scripts_own_python_children_come_from_the_server_and_see_what_fresh_ones_see(probe, tmp_path):
    """scripts/small_suite.py and paper_tables.py start train.py with ``subprocess.run``: under the
    fork server those children are forked by the server too (not by the script), with the same
    argv, cwd, environment, streams and exit status as a fresh interpreter's."""
    (tmp_path / "parent.py").write_text(PARENT)
    answers = {}
    for name, start in (("forked", launch.run), ("fresh", subprocess.run)):
        result = start([sys.executable, "parent.py", str(tmp_path)], cwd=tmp_path, env=env(), capture_output=True, text=True,
                       timeout=120)
        assert result.returncode == 0, result.stderr
        parent = json.loads(result.stdout)
        lines = (tmp_path / "child.out").read_text().splitlines()
        child = json.loads(lines[0])
        answers[name] = (parent["failed"], parent["checked"], lines[1:], child)
        spawned_by_parent = child.pop("parent_pid") == parent["pid"]
        assert spawned_by_parent == (name == "fresh"), name
        child.pop("open_fds")  # the fresh interpreter's list depends on what its parent left open
    assert answers["forked"] == answers["fresh"]
    assert answers["fresh"][:3] == (4, [3, "to stderr\n"], ["to stderr"])
