"""The path of the Hydra config through the repository: which of our files a training run's
``cfg`` (or a node of it) is handed to, in order.

A *stop* is a run of consecutive calls in one file that take a ``DictConfig`` argument; a
*return* is a stop in a file that the path had already left. Fewer files, stops and returns mean
that a reader following ``cfg`` from ``train.py`` jumps less between modules.

    python benchmarks/config_path.py [override ...]     # default: a one-epoch LeNet-5 run on 512 images
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_OVERRIDES = ["trainer.epochs=1", "data.train_subset=512", "data.test_subset=256", "logger=disabled"]


def trace(overrides: list[str]) -> list[str]:
    """The repository files (relative) of every call that takes a DictConfig argument, in order."""
    from omegaconf import DictConfig

    visited: list[str] = []

    def profile(frame, event, arg):  # type: ignore[no-untyped-def]
        if event != "call":
            return
        path = frame.f_code.co_filename
        if not path.startswith(str(REPO)) or "/.venv/" in path or "/benchmarks/" in path:
            return
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if any(isinstance(frame.f_locals.get(n), DictConfig) for n in names):
            visited.append(str(Path(path).relative_to(REPO)))

    with tempfile.TemporaryDirectory() as out:
        sys.argv = ["train.py", *overrides, f"hydra.run.dir={out}/run"]
        os.chdir(REPO)
        import runpy

        sys.setprofile(profile)
        try:
            runpy.run_path(str(REPO / "train.py"), run_name="__main__")
        except SystemExit:
            pass
        finally:
            sys.setprofile(None)
    return visited


def summarise(visited: list[str]) -> tuple[list[str], int, int]:
    """The stops (consecutive calls in one file folded), the number of files, and the returns."""
    stops = [f for i, f in enumerate(visited) if i == 0 or visited[i - 1] != f]
    returns = sum(1 for i, f in enumerate(stops) if f in stops[:i])
    return stops, len(set(stops)), returns


def main() -> None:
    stops, files, returns = summarise(trace(sys.argv[1:] or DEFAULT_OVERRIDES))
    print(" -> ".join(stops))
    print(f"{files} files, {len(stops)} stops, {returns} returns to a file already left")


if __name__ == "__main__":
    main()
