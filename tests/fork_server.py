"""A fork server for the end-to-end tests: ``python train.py ...`` without the 4-5 s of start-up.

A fresh ``python train.py`` spends most of a short test run importing torch (about 2 s on the test
machine), ``torch._dynamo`` (about 1.7 s, which torch imports when the first optimizer is built)
and Hydra, and decompressing Fashion-MNIST (0.6 s). This server does that once and then forks one
child per request: the child takes the request's argv, working directory, environment and standard
streams, resets the signal handlers to a fresh interpreter's, and runs the script as a new
``__main__`` module (as the interpreter does: ``sys.argv[0]`` as given, ``__file__`` absolute),
then exits through the interpreter's normal shutdown (atexit handlers, non-daemon threads, flushed
streams). The child is a real process: it gets real signals, writes real files and has its own exit
status.

Started by :mod:`tests.launch` (one server per pytest process, never forked from the pytest process
itself, which runs threads). Protocol, over an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket, one
connection per child: the client sends ``{"argv", "cwd", "env"}`` as JSON with three file
descriptors (stdin, stdout, stderr); the server answers ``pid N`` once the child runs and
``status S`` (``os.waitstatus_to_exitcode``: negative for a signal) when it has ended. The server
exits when its standard input closes (the pytest process ended). A script it runs gets its own
``python train.py`` children from it too (:func:`tests.launch.serve_children`).
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import socket
import sys
import warnings

#: what a short train.py run imports; the rest (FFCV, W&B, timm) stays lazy, as in a fresh process
PRELOAD = (
    "torch", "torch._dynamo", "torchvision", "hydra", "hydra._internal.hydra", "hydra._internal.utils", "omegaconf",
    "training.config", "training.presets", "training.records", "training.rundir", "training.hydra_callbacks",
    "training.loop", "numpy.ma",
)
MAX_REQUEST = 1 << 20


def _preload() -> None:
    """Import :data:`PRELOAD` and read the machine's Fashion-MNIST once with numpy:
    ``training.data.tensors`` remembers decompressed files by their compressed bytes, so a child still
    reads and checks each file but skips the 0.6 s of decompression. The server runs no torch
    operation: OpenMP's thread pool does not survive ``fork``, and a child that inherits a started one
    hangs in its first parallel operation (``tests/test_launch.py`` runs one)."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    _import_ffcv()
    from training.data import DataError
    from training.data.tensors import read_fashion_mnist

    try:
        read_fashion_mnist(None)
    except DataError:  # not installed here: each child says so itself
        pass
    # What is imported now lives until the child exits; frozen, the collector never scans it. A fresh
    # interpreter that imported all this spends 0.7 s of its shutdown in collections over these objects
    # (0.15 s frozen); the child's own objects are collected as in any interpreter.
    gc.freeze()


def _import_ffcv() -> None:
    """Import FFCV and the loader of ``data=ffcv_imagenet`` (2.5 s, most of it numba compiling a typed
    dict when ``ffcv.fields.rgb_image`` is imported) without starting numba's thread pool: importing
    FFCV calls ``numba.set_num_threads(1)``, which starts it, and OpenMP's would not survive ``fork``
    either. In a child the pool starts when its loader first sets the thread count, as FFCV's import
    would have started it (``tests/test_launch.py`` runs a 2-thread numba loop in a child)."""
    try:
        import numba
    except ImportError:  # FFCV (which requires numba) not installed here: its tests fail and say so
        return
    set_num_threads = numba.set_num_threads
    numba.set_num_threads = lambda n: None
    try:
        import ffcv.pipeline.compiler as compiler
    except ImportError:
        return
    finally:
        numba.set_num_threads = set_num_threads
    compiler.set_num_threads = set_num_threads  # FFCV bound the name when imported
    import training.data.ffcv_loader  # noqa: F401


def serve(path: str) -> dict:
    """Accept requests on ``path`` until stdin closes; returns only in a forked child, with its request."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    print("ready", flush=True)
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    while True:
        for key, _ in selector.select():
            if key.data == "parent":
                if not os.read(sys.stdin.fileno(), 4096):
                    sys.exit(0)
            elif key.data == "accept":
                connection, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST, 3)
                request = json.loads(message)
                with warnings.catch_warnings():  # OpenBLAS's one idle thread: it re-creates its pool after fork
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:
                    for fd in (listener, connection, *(c for _, c in children.values())):
                        fd.close()
                    for pidfd in children:
                        os.close(pidfd)
                    selector.close()
                    request["fds"] = fds
                    return request
                for fd in fds:
                    os.close(fd)
                connection.send(f"pid {pid}".encode())
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, connection)
                selector.register(pidfd, selectors.EVENT_READ, "child")
            else:
                pidfd = key.fd
                pid, connection = children.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                try:
                    connection.send(f"status {os.waitstatus_to_exitcode(status)}".encode())
                except OSError:  # the client is gone
                    pass
                connection.close()


def become(request: dict) -> str:
    """Turn this forked child into ``python SCRIPT ARGS`` started with the request's environment."""
    for target, fd in enumerate(request["fds"]):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as CPython sets it at start-up
    script = os.path.abspath(request["argv"][1])
    sys.argv = request["argv"][1:]
    sys.orig_argv = list(request["argv"])
    sys.path[0] = os.path.dirname(script)
    return script


def run_script(script: str) -> None:
    """Run ``script`` as ``__main__``; an uncaught exception ends it as it would a fresh interpreter."""
    import atexit
    import traceback
    import types

    main = types.ModuleType("__main__")
    main.__file__, main.__cached__, main.__builtins__ = script, None, __builtins__
    sys.modules["__main__"] = main
    try:
        with open(script, "rb") as source:
            code = compile(source.read(), script, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - printed and turned into the interpreter's exit
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:  # start at the script's frame
            tb = tb.tb_next
        traceback.print_exception(type(error), error, tb or error.__traceback__)
        if isinstance(error, KeyboardInterrupt):  # CPython then dies by SIGINT
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        sys.exit(1)


if __name__ == "__main__":
    path, server_env = sys.argv[1], dict(os.environ)  # as started (importing torch sets TORCHINDUCTOR_CACHE_DIR)
    _preload()
    from tests import launch

    script = become(serve(path))  # sets sys.argv to the request's
    if launch.enabled():
        launch.serve_children(path, server_env)
    run_script(script)
