"""The results-table script aggregates run records correctly (checked by hand-computed values)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "small_experiments.py"
spec = importlib.util.spec_from_file_location("small_experiments", SCRIPT)
small_experiments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(small_experiments)  # type: ignore[union-attr]


def _record(name, acc, sparsity=0.9, failed=False):
    record = {"config": {"name": name}, "test_acc": acc, "sparsity": sparsity, "wall_time_s": 10.0}
    return {"config": {"name": name}, "failed": True} if failed else record


def test_methods_table_reports_mean_and_sample_std_over_seeds_and_counts_failures():
    runs = [_record("rigl", 0.80), _record("rigl", 0.90), _record("rigl_ham", 0.5, failed=True), _record("acdc", 0.875)]
    table = small_experiments.methods_table(runs, "cmd")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "| 2 | 85.00 ± 7.07 | 90.00 |" in rows["rigl"]  # std of (80, 90) = sqrt(50) = 7.07
    assert "| 1 | 87.50 |" in rows["acdc"]
    assert "diverged" in rows["rigl_ham"] and "not run" in rows["dense"]
    reference = json.loads(small_experiments.REFERENCE.read_text())["dense"]["dense"]["100ep"]
    assert "reference" in table and f"{reference[0]:.2f} ± {reference[1]:.2f} |" in rows["dense"]  # in its labelled column
