"""Records that cannot be what they claim are refused, each named with the reason, and never averaged:
a FIFO where a record or a summary should be (reading it used to wait forever), a metric that is
NaN, Infinity or a string (compare.py printed `nan ± nan (n=5)`), a truncated JSON file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from analysis import runs as R
from tests.e2e import REPO, env

SOURCE = REPO / "results" / "records" / "paper-small"
NAMES = [f"rigl__setting=small,sparsity.target=0.8,trainer.seed={seed}.json" for seed in range(5)]


@pytest.fixture()
def damaged(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(SOURCE / name, folder / name)
    for name, value in zip(NAMES[1:4], (float("nan"), float("inf"), "high")):
        record = json.loads((folder / name).read_text())
        record["test_acc"] = value
        (folder / name).write_text(json.dumps(record))  # NaN and Infinity as Python's json writes them
    (folder / "truncated.json").write_text((SOURCE / NAMES[0]).read_text()[:100])
    os.mkfifo(folder / "pipe.json")
    return folder


def _from_disk(source) -> list[dict]:
    """``analysis.runs.from_disk`` in a process of its own, with a time-out (a FIFO read waits forever)."""
    code = (f"import json\nfrom analysis import runs as R\nprint(json.dumps([{{'source': r.source, 'status': r.status, 'error': r.error}} "
            f"for r in R.from_disk([{str(source)!r}])]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return [R.Run(r["source"], {}, None, r["status"], r["error"]) for r in json.loads(result.stdout)]


def test_damaged_records_are_listed_unreadable_with_their_reason_and_the_rest_is_read(damaged):
    runs = _from_disk(damaged)
    reasons = {os.path.basename(r.source): r.error for r in runs if r.status == "unreadable"}
    assert reasons[NAMES[1]].endswith("has test_acc=nan, not a finite number: a damaged record, never averaged")
    assert "has test_acc=inf, not a finite number" in reasons[NAMES[2]] and "has test_acc='high', not a finite number" in reasons[NAMES[3]]
    assert "truncated.json is not valid JSON" in reasons["truncated.json"]
    assert "pipe.json is not a regular file (a FIFO, a socket or a device)" in reasons["pipe.json"]
    assert sorted(os.path.basename(r.source) for r in runs if r.status == "finished") == [NAMES[0], NAMES[4]]


def test_compare_and_the_figure_never_average_a_damaged_record_and_never_wait_on_a_fifo(damaged, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "compare.py"), str(damaged), "--setting", "small", "--table", "4"],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nan" not in result.stdout.split("Not averaged:")[0] and "(n=2)" in result.stdout
    assert result.stdout.count("\nunreadable: ") == 5
    for name in NAMES[:1] + NAMES[4:]:
        os.remove(damaged / name)  # only damaged records left: no plot of nothing
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "figures.py"), "accuracy-sparsity", str(damaged), "--output",
                             str(tmp_path / "f.png")], cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no finished sparse runs" in result.stderr and not (tmp_path / "f.png").exists()


def test_a_run_directory_whose_summary_is_a_fifo_is_unreadable_not_a_hang(tmp_path):
    run_dir = tmp_path / "sweep" / "rigl" / "seed=0"
    run_dir.mkdir(parents=True)
    os.mkfifo(run_dir / "summary.json")
    [run] = _from_disk(tmp_path / "sweep")
    assert run.status == "unreadable" and "summary.json is not a regular file" in run.error
