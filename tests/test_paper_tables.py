"""scripts/paper_tables.py: every cell of a table, where Hydra puts it, what it costs, and a real launch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.e2e import REPO, env

SCRIPT = REPO / "scripts" / "paper_tables.py"
spec = importlib.util.spec_from_file_location("paper_tables", SCRIPT)
paper_tables = importlib.util.module_from_spec(spec)
sys.modules["paper_tables"] = paper_tables  # its dataclasses look their module up
spec.loader.exec_module(paper_tables)  # type: ignore[union-attr]


def test_table4_has_every_method_target_and_seed_and_refuses_the_str_cells_without_a_preset(tmp_path):
    jobs = paper_tables.expand("table4", "imagenet", 3, tmp_path, [])
    assert len(jobs) == 13 * 3 * 3
    refused = sorted({(j.experiment, j.overrides[0]) for j in jobs if j.refused})
    assert refused == [("str", "sparsity.target=0.8"), ("str", "sparsity.target=0.95"), ("str_ham", "sparsity.target=0.8"),
                       ("str_ham", "sparsity.target=0.9"), ("str_ham", "sparsity.target=0.95")]
    assert all("is not valid for sparsity.method=str" in j.refused for j in jobs if j.refused)
    assert not [j for j in paper_tables.expand("table4", "small", 3, tmp_path, []) if j.refused]


def test_table3_gpu_hours_follow_the_throughput_figure(tmp_path):
    jobs = paper_tables.expand("table3", "imagenet", 3, tmp_path, [])
    # 3 seeds x (100 + 100 + 2·100 + 2·100 epochs at 100, the same at 200): SAM counts twice
    epochs = 3 * (100 + 100 + 200 + 200 + 200 + 200 + 400 + 400)
    assert sum(j.gpu_hours for j in jobs) == pytest.approx(epochs * 0.117)
    assert {j.epochs for j in jobs} == {100, 200}
    assert {j.epochs for j in paper_tables.expand("table3", "small", 1, tmp_path, [])} == {10, 20}


@pytest.mark.slow
def test_a_small_table_runs_with_the_local_launcher_and_a_second_call_skips_it(tmp_path):
    quick = ["trainer.epochs=1", "data.train_subset=512", "data.test_subset=500", "logger=disabled", "trainer.progress=false"]
    command = [sys.executable, str(SCRIPT), "oneshot", "--setting", "small", "--seeds", "2", "--launcher", "local",
               "--sweep-dir", str(tmp_path / "runs"), "--oneshot-output", str(tmp_path / "oneshot.md"), "--", *quick]
    first = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    jobs = paper_tables.expand("oneshot", "small", 2, tmp_path / "runs", quick)
    assert len(jobs) == 4
    for job in jobs:  # each job's run directory is where the dry run said it would be
        summary = json.loads((job.run_dir / "summary.json").read_text())
        assert summary["config"]["name"] == job.experiment and summary["epoch"] == 1
    oneshot = (tmp_path / "oneshot.md").read_text()  # the one-shot table, pruned from both seeds
    rows = [line for line in oneshot.splitlines() if line.startswith(("| 0.5 |", "| 0.7 |", "| 0.8 |", "| 0.9 |"))]
    assert len(rows) == 4 and all(row.count("(n=2)") == 2 for row in rows)
    assert all((job.run_dir / "oneshot.json").exists() for job in jobs)
    second = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "4 jobs: 4 done, 0 to run, 0 refused" in second.stdout
