"""Start ``python SCRIPT.py ...`` for a test: from the fork server (:mod:`tests.fork_server`) when it
can stand in for a fresh interpreter, else as a plain subprocess.

:func:`start` and :func:`run` take the arguments of ``subprocess.Popen`` and ``subprocess.run`` that
the tests use and return what those return (a process with ``pid``, ``poll``, ``wait``,
``send_signal``, ``communicate`` and ``returncode``; a ``CompletedProcess``). The fork server runs
the command when it is ``[sys.executable, "<file>.py", ...]`` and its environment differs from
:func:`environment` (the one the server runs in, whichever command came first) only in variables read at
run time (not in those that the interpreter, torch or its libraries read when imported: ``PYTHON*``,
``TORCH*``, ``OMP_*`` ...). :func:`fresh_starts` counts the commands it did not stand in for, and
why; the suite's summary prints them. ``HAM_TEST_FORK_SERVER=0`` starts every command as a fresh
interpreter (the suite then takes several minutes longer).

A script started this way that itself runs ``subprocess.run([sys.executable, "train.py", ...])``
(``scripts/small_suite.py``, ``scripts/paper_tables.py``: each run a process of its own) gets its
children from the same server (:func:`serve_children`), under the same rule.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
#: environment variables read when the interpreter starts or a preloaded module is imported
IMPORT_TIME_PREFIXES = ("PYTHON", "TORCH", "PYTORCH", "OMP_", "KMP_", "GOMP_", "MKL_", "OPENBLAS_", "CUDA", "NUMBA_",
                        "HYDRA_", "LD_", "MALLOC_")

_server: tuple[subprocess.Popen | None, str, dict[str, str]] | None = None
#: why commands started as fresh interpreters: a reason -> how many
_fresh: Counter[str] = Counter()
#: the real ``subprocess.run`` (:func:`serve_children` replaces the module's attribute in a forked script)
_subprocess_run = subprocess.run


def enabled() -> bool:
    return os.environ.get("HAM_TEST_FORK_SERVER", "1") != "0"


def environment() -> dict[str, str]:
    """The tests' environment for the processes they start: this process's, with the repository on
    ``PYTHONPATH``, W&B off unless ``WANDB_MODE`` says otherwise, and no Hugging Face hub lookups.
    The fork server runs in it, so a command started with it is forked whichever test came first."""
    return dict(os.environ, WANDB_MODE=os.environ.get("WANDB_MODE", "disabled"), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))


def fresh_starts() -> dict[str, int]:
    """How many commands eligible for the fork server started as fresh interpreters, by reason."""
    return dict(_fresh)


def _server_for(env: dict[str, str]) -> str | None:
    """The fork server's socket (started on first use, in :func:`environment`); None when ``env``
    differs from the server's in a variable read at import."""
    global _server
    if _server is None:
        folder = tempfile.mkdtemp(prefix="ham-fork-server-")
        path, server_env = os.path.join(folder, "socket"), environment()
        process = subprocess.Popen([sys.executable, "-m", "tests.fork_server", path], cwd=REPO, env=server_env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if process.stdout.readline() != b"ready\n":
            raise RuntimeError(f"the tests' fork server did not start (exit status {process.wait()})")

        def stop() -> None:
            process.stdin.close()  # the server exits when its stdin closes
            process.wait(timeout=30)
            shutil.rmtree(folder, ignore_errors=True)

        atexit.register(stop)
        _server = (process, path, server_env)
    _, path, server_env = _server
    differing = sorted(k for k in server_env.keys() | env.keys() if server_env.get(k) != env.get(k) and k.startswith(IMPORT_TIME_PREFIXES))
    if differing:
        reason = "environment differs in " + ", ".join(differing)
        _fresh[reason] += 1
        return None
    return path


class ForkedProcess:
    """A child of the fork server, driven like a ``subprocess.Popen``."""

    def __init__(self, args: list[str], connection: socket.socket, pid: int, captured: tuple[IO | None, IO | None], text: bool):
        self.args, self.pid, self.returncode = args, pid, None
        self._connection, self._captured, self._text = connection, captured, text

    def _status(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            self._connection.settimeout(timeout)
            try:
                message = self._connection.recv(64)
            except (socket.timeout, BlockingIOError):
                return None
            if not message.startswith(b"status "):
                raise RuntimeError(f"the tests' fork server stopped while pid {self.pid} ran")
            self.returncode = int(message.split()[1])
            self._connection.close()
        return self.returncode

    def poll(self) -> int | None:
        return self._status(0)

    def wait(self, timeout: float | None = None) -> int:
        if self._status(timeout) is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(15)

    def kill(self) -> None:
        self.send_signal(9)

    def communicate(self, timeout: float | None = None) -> tuple:
        self.wait(timeout)
        return tuple(self._read(f) for f in self._captured)

    @property
    def stdout(self) -> IO | None:
        """What the child wrote to a ``stdout=PIPE`` (readable once it has ended)."""
        return self._stream(self._captured[0])

    @property
    def stderr(self) -> IO | None:
        return self._stream(self._captured[1])

    def _stream(self, file: IO | None) -> IO | None:
        if file is None or self.poll() is None:
            return None
        data = self._read(file)
        return io.StringIO(data) if self._text else io.BytesIO(data)

    def _read(self, file: IO | None):
        if file is None:
            return None
        file.seek(0)
        data = file.read()
        return data.decode(errors="replace") if self._text else data


def _stream(spec, default_fd: int) -> tuple[int, IO | None]:
    """The file descriptor to hand the child for a ``stdout=``/``stderr=`` argument, and the file
    that captures it (``subprocess.PIPE``: a temporary file read once the child has ended)."""
    if spec is None:
        return default_fd, None
    if spec == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_WRONLY), None
    if spec == subprocess.PIPE:
        file = tempfile.TemporaryFile()
        return file.fileno(), file
    return spec.fileno(), None


def _fork_server_for(args: list, kwargs: dict, supported: set[str]) -> str | None:
    """The fork server's socket if it can start ``args`` with ``kwargs``, else None."""
    if not enabled() or set(kwargs) - supported or len(args) < 2 or args[0] != sys.executable or not str(args[1]).endswith(".py"):
        return None
    return _server_for(dict(os.environ) if kwargs.get("env") is None else kwargs["env"])


def start(args: list, **kwargs):
    """``subprocess.Popen(args, **kwargs)``; from the fork server when it can stand in (keywords
    ``cwd``, ``env``, ``stdout``, ``stderr``, ``text`` only)."""
    path = _fork_server_for(args, kwargs, {"cwd", "env", "stdout", "stderr", "text"})
    if path is None:
        return subprocess.Popen(args, **kwargs)
    cwd, env, stdout, stderr, text = (kwargs.get(k) for k in ("cwd", "env", "stdout", "stderr", "text"))
    cwd, env = cwd or os.getcwd(), dict(os.environ) if env is None else env
    stdin = os.open(os.devnull, os.O_RDONLY)
    out_fd, out_file = _stream(stdout, 1)
    err_fd, err_file = (out_fd, None) if stderr == subprocess.STDOUT else _stream(stderr, 2)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    connection.connect(path)
    request = json.dumps({"argv": [str(a) for a in args], "cwd": str(cwd), "env": env}).encode()
    socket.send_fds(connection, [request], [stdin, out_fd, err_fd])
    os.close(stdin)
    for fd, spec in ((out_fd, stdout), (err_fd, stderr)):
        if spec == subprocess.DEVNULL:
            os.close(fd)
    reply = connection.recv(64)
    if not reply.startswith(b"pid "):
        raise RuntimeError("the tests' fork server did not start the command")
    return ForkedProcess([str(a) for a in args], connection, int(reply.split()[1]), (out_file, err_file), text)


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(args, **kwargs)``; from the fork server when it can stand in (keywords
    ``cwd``, ``env``, ``capture_output``, ``stdout``, ``stderr``, ``text``, ``timeout``, ``check`` only)."""
    if _fork_server_for(args, kwargs, {"cwd", "env", "capture_output", "stdout", "stderr", "text", "timeout", "check"}) is None:
        return _subprocess_run(args, **kwargs)
    pipe = subprocess.PIPE if kwargs.get("capture_output") else None
    timeout = kwargs.get("timeout")
    process = start(args, cwd=kwargs.get("cwd"), env=kwargs.get("env"), stdout=kwargs.get("stdout", pipe),
                    stderr=kwargs.get("stderr", pipe), text=kwargs.get("text", False))
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    if kwargs.get("check") and process.returncode:
        raise subprocess.CalledProcessError(process.returncode, args, out, err)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def serve_children(path: str, server_env: dict[str, str]) -> None:
    """In a script the fork server started: its ``subprocess.run`` goes through :func:`run`, so the
    commands it starts come from the server at ``path`` (whose environment is ``server_env``)."""
    global _server
    _server = (None, path, dict(server_env))
    subprocess.run = run
