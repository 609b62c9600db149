"""Commands that regenerate committed results from records read the records strictly and never replace a
committed result with less: a truncated or non-numeric record, or a missing records folder, used to
change the verdicts' seeds and p-values (or turn them into `not run` rows) and rewrite README.md,
with exit code 0."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from scripts.result_files import FewerResults, seeds_in, strict_runs, write_result
from tests.e2e import REPO, env

TABLE = "| claim | seeds |\n|---|---|\n| HAM improves X | 5/5 |\n| HAM improves Y | 89.0 ± 0.1 (n=5) |\n"


def test_a_table_with_more_not_run_rows_or_fewer_seeds_is_not_written_unless_allowed(tmp_path, capsys):
    path = tmp_path / "claims.md"
    path.write_text(TABLE)
    assert seeds_in(TABLE) == 15  # 5 + 5 treated/baseline, n=5
    with pytest.raises(FewerResults, match="would get 1 more 'not run' row"):
        write_result(path, TABLE.replace("5/5", "not run"))
    with pytest.raises(FewerResults, match="would state 13 seeds where it states 15"):
        write_result(path, TABLE.replace("(n=5)", "(n=3)"))
    assert path.read_text() == TABLE
    assert write_result(path, TABLE) is False and "unchanged:" in capsys.readouterr().out
    assert write_result(path, TABLE.replace("(n=5)", "(n=3)"), allow_fewer=True) is True and "rewrote:" in capsys.readouterr().out
    assert write_result(path, TABLE.replace("(n=3)", "(n=6)")) is True  # more seeds: fine


def test_records_are_read_strictly(tmp_path):
    with pytest.raises(FewerResults, match="does not exist: the table would lose every result read from it"):
        strict_runs([tmp_path / "none"])
    assert strict_runs([tmp_path / "none"], allow_fewer=True) == []
    folder = tmp_path / "records"
    folder.mkdir()
    source = sorted((REPO / "results" / "records" / "claims").glob("*.json"))[0]
    record = json.loads(source.read_text())
    record["test_acc"] = "high"
    (folder / source.name).write_text(json.dumps(record))
    with pytest.raises(FewerResults, match="1 record\\(s\\) cannot be read.*has test_acc='high', not a finite number"):
        strict_runs([folder])


@pytest.fixture()
def checkout(tmp_path):
    """A copy of the repository's files (no .git, .venv or run folders) whose results may be damaged."""
    copy = tmp_path / "checkout"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", ".venv", "multirun", "outputs", "wandb", "__pycache__", ".pytest_cache"))
    return copy


def test_verdicts_from_damaged_or_missing_records_stop_and_leave_the_committed_files(checkout):
    def verdicts(*options):
        return subprocess.run([sys.executable, "scripts/small_claims.py", "verdicts", *options], cwd=checkout,
                              env={**env(), "PYTHONPATH": str(checkout)}, capture_output=True, text=True, timeout=300)

    committed = {p: (checkout / p).read_text() for p in ("README.md", "results/README.md", "results/compare/claims_small.md")}
    damaged = sorted((checkout / "results" / "records" / "claims").glob("random_signin__*.json"))[0]
    damaged.write_text(damaged.read_text()[:200])  # truncated
    result = verdicts()
    assert result.returncode == 2 and "cannot be read" in result.stderr and str(damaged) in result.stderr, result.stderr[-2000:]
    shutil.rmtree(checkout / "results" / "records" / "claims")
    result = verdicts()
    assert result.returncode == 2 and "does not exist" in result.stderr and "--allow-fewer" in result.stderr, result.stderr[-2000:]
    assert {p: (checkout / p).read_text() for p in committed} == committed
    result = verdicts("--allow-fewer")  # asked for: the claims without records say `not run`
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not run" in (checkout / "results/compare/claims_small.md").read_text()
    assert f"rewrote: {checkout / 'results/compare/claims_small.md'}" in result.stdout


def test_compare_strict_keeps_a_committed_table_that_its_records_no_longer_fill(tmp_path):
    """What small_suite.py --tables-only runs: with a record gone, Table 4 would lose a seed; with one
    damaged, it would be made without it. Both stop; --allow-fewer writes the smaller table."""
    records, out = tmp_path / "records", tmp_path / "compare"
    shutil.copytree(REPO / "results" / "records" / "paper-small", records)
    out.mkdir()
    committed = (REPO / "results" / "compare" / "table4_small.md").read_text()
    (out / "table4_small.md").write_text(committed)

    def compare(*options):
        return subprocess.run([sys.executable, "scripts/compare.py", str(records), "--setting", "small", "--table", "4", "--output-dir",
                               str(out), "--strict", *options], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)

    first = sorted(records.glob("rigl__*.json"))[0]
    first.write_text(first.read_text()[:100])
    result = compare()
    assert result.returncode == 2 and "1 record(s) cannot be read" in result.stderr and str(first) in result.stderr
    first.unlink()
    result = compare()
    assert result.returncode == 2 and "would state" in result.stderr and "--allow-fewer" in result.stderr, result.stderr[-2000:]
    assert (out / "table4_small.md").read_text() == committed and not (out / "table4_small.csv").exists()
    result = compare("--allow-fewer")
    assert result.returncode == 0 and "(n=4)" in (out / "table4_small.md").read_text()
