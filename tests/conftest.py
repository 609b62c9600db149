import os

import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# In-process tests use the machine's 2 cores; under pytest-xdist (make test: 2 workers) one each.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


import shutil  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests import launch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: the shared JPEG data set: 3000 training and 1000 validation images (training/data/sample_jpegs.py)
N_TRAIN, N_VAL = 3000, 1000


def _shared(tmp_path_factory, name: str, build) -> Path:
    """A session's read-only test data, built by ``build(folder)``. Under pytest-xdist the workers
    share one copy: the first to arrive builds it while holding a lock, the others wait for it."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    from filelock import FileLock

    folder = tmp_path_factory.getbasetemp().parent / f"shared-{name}"
    with FileLock(f"{folder}.lock"):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="session")
def jpeg_tree(tmp_path_factory) -> Path:
    from training.data.sample_jpegs import make_jpeg_tree

    return _shared(tmp_path_factory, "jpeg", lambda folder: make_jpeg_tree(folder / "tree", N_TRAIN, N_VAL)) / "tree"


@pytest.fixture(scope="session")
def beton_dir(jpeg_tree, tmp_path_factory) -> Path:
    """train.beton/val.beton written from ``jpeg_tree`` by the writer script, in a real process."""

    def write(out: Path) -> None:
        result = launch.run([sys.executable, str(REPO / "scripts" / "write_ffcv.py"), str(jpeg_tree), str(out), "--workers", "2",
                                 "--force"], env=launch.environment(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    return _shared(tmp_path_factory, "beton", write)


#: seconds per file measured with `make test` plus --durations=0 on 2 cores with empty caches (2026-12-04, 7:02 in all);
#: only the order matters
MEASURED_SECONDS = {
    "test_train_e2e.py": 73, "test_ffcv_writer.py": 70, "test_gpu_check.py": 67, "test_image_train.py": 65,
    "test_preemption.py": 57, "test_slurm.py": 50, "test_paper_tables.py": 45, "test_ffcv_loader.py": 40,
    "test_calibration.py": 30, "test_small_suite.py": 26, "test_packaging.py": 26, "test_config.py": 24, "test_ddp.py": 23,
    "test_readme.py": 22, "test_export.py": 21, "test_compare.py": 20, "test_run_records.py": 19,
    "test_optimizer_protocol.py": 17, "test_figures.py": 16, "test_start_up.py": 16,
}


#: the pytest-xdist workers' :func:`launch.fresh_starts`, added up on the controller
_FRESH_STARTS: Counter[str] = Counter()


def pytest_sessionfinish(session) -> None:
    if hasattr(session.config, "workeroutput"):  # a pytest-xdist worker: its controller prints the summary
        session.config.workeroutput["fresh_starts"] = launch.fresh_starts()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    _FRESH_STARTS.update(getattr(node, "workeroutput", {}).get("fresh_starts", {}))


def pytest_terminal_summary(terminalreporter) -> None:
    """How many commands the fork server could have started came from a fresh interpreter, and why
    (a command whose environment changes what is read at import: the tests that set one on purpose
    say so; any other reason makes the suite slower and is worth a look)."""
    starts = _FRESH_STARTS + Counter(launch.fresh_starts())  # the workers' and, without pytest-xdist, this process's
    if starts:
        reasons = "; ".join(f"{count} x {reason}" for reason, count in sorted(starts.items()))
        terminalreporter.write_line(f"fork server: started fresh instead: {reasons}")


def pytest_collection_modifyitems(config, items) -> None:
    """The longest files first (measured), then the other files with end-to-end tests (marked slow):
    pytest-xdist hands out whole files in this order (make test: --dist loadfile), so the long files
    start early and the short ones fill the gaps, instead of a long file running alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: (-MEASURED_SECONDS.get(item.path.name, 0), item.path not in slow_files))
