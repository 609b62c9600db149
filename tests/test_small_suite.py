"""scripts/small_suite.py: what the whole suite launches (dry run), and a real two-seed run of its
Table 3 and one-shot parts on small subsets: records, tables checked against the runs' summaries,
the timings file, and a rerun that trains nothing again."""

from __future__ import annotations

import json
import sys

import pytest

from tests import launch
from tests.e2e import REPO, env

SCRIPT = REPO / "scripts" / "small_suite.py"


def test_the_dry_run_lists_every_table_cell_the_grid_and_the_theory(tmp_path):
    result = launch.run([sys.executable, str(SCRIPT), "--dry-run", "--sweep-dir", str(tmp_path)], cwd=REPO, env=env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # Table 3: 8 experiments x 5 seeds; Table 4: 13 experiments x 3 targets x 5 seeds (STR has small presets at all three)
    assert "29 commands, 235 table runs" in result.stdout
    commands = [line.strip() for line in result.stdout.splitlines() if line.startswith("        ")]
    for experiment in ("dense_sam_ham_200ep", "random_signin", "acdc_ham", "rigl_ham", "spred", "pilot", "str_ham"):
        assert any(f"+experiment={experiment} " in c for c in commands), experiment
    assert sum("sparsity.target=0.8,0.9,0.95 trainer.seed=0,1,2,3,4" in c for c in commands) == 13
    assert sorted(c.split("ham.alpha=")[1].split()[0] for c in commands if "ham.alpha=" in c) == sorted(["5", "10", "20", "50", "100", "200"])
    assert all("trainer.threads=1" in c for c in commands if c.startswith("train.py"))
    assert any(c.startswith("scripts/theory_experiment.py") for c in commands)


def test_seeds_from_trains_only_the_new_seeds(tmp_path):
    result = launch.run([sys.executable, str(SCRIPT), "--dry-run", "--parts", "table3", "table4", "--seeds", "5", "--seeds-from", "3",
                             "--sweep-dir", str(tmp_path)], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "21 commands, 94 table runs" in result.stdout  # (8 + 13 x 3) x 2 seeds
    commands = [line.strip() for line in result.stdout.splitlines() if line.startswith("        ")]
    assert all("trainer.seed=3,4" in c for c in commands)
    bad = launch.run([sys.executable, str(SCRIPT), "--dry-run", "--seeds", "3", "--seeds-from", "3"], cwd=REPO, env=env(),
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--seeds-from 3 is not valid" in bad.stderr


@pytest.mark.slow
def test_table3_and_oneshot_parts_run_build_their_tables_and_a_rerun_trains_nothing(tmp_path):
    command = [sys.executable, str(SCRIPT), "--parts", "table3", "oneshot", "--seeds", "2", "--sweep-dir", str(tmp_path / "runs"),
               "--results-dir", str(tmp_path / "results"), "--", "data.train_subset=256", "data.test_subset=200"]
    first = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    records = sorted((tmp_path / "results" / "records" / "paper-small").glob("*.json"))
    assert len(records) == 16  # 8 experiments x 2 seeds
    summaries = {p: json.loads(p.read_text()) for p in (tmp_path / "runs" / "paper").glob("*/*/summary.json")}
    assert len(summaries) == 16
    table3 = (tmp_path / "results" / "compare" / "table3_small.md").read_text()
    for experiment, row in (("dense", "Baseline"), ("dense_ham", "HAM")):
        accs = [s["test_acc"] for s in summaries.values() if s["config"]["name"] == experiment]
        mean = sum(accs) / 2
        std = ((accs[0] - mean) ** 2 + (accs[1] - mean) ** 2) ** 0.5  # n - 1 = 1
        # the overrides every run shares are on the row (they differ from the setting's defaults)
        line = next(line for line in table3.splitlines() if line.startswith(f"| {row} [data.test_subset=200, data.train_subset=256] |"))
        assert line.split(" | ")[1] == f"{100 * mean:.2f} ± {100 * std:.2f} (n=2)"
    oneshot = (tmp_path / "results" / "compare" / "oneshot_small.md").read_text()
    body = [line for line in oneshot.splitlines() if line.startswith("| ")][1:]  # below the header (the rule starts "|-")
    assert [line.split(" | ")[0] for line in body] == ["| 0 (unpruned)", "| 0.5", "| 0.7", "| 0.8", "| 0.9", "| 0.95"]
    assert all("(n=2)" in line.split(" | ")[1] and "(n=2)" in line.split(" | ")[2] for line in body)
    assert "Every column of ours: data.test_subset=200, data.train_subset=256." in " ".join(oneshot.split())  # said once
    timings = (tmp_path / "results" / "small_suite.md").read_text()
    assert sum(line.endswith("| 0 |") for line in timings.splitlines()) == 8 and "2 workers" in timings
    histories = {p.with_name("history.jsonl"): p.with_name("history.jsonl").read_text() for p in summaries}
    logs = {p: p.read_text() for p in (tmp_path / "runs" / "logs").glob("*.log")}
    assert len(logs) == 8
    second = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "[suite] all 16 table runs are finished: nothing to train" in second.stdout and "train.py" not in second.stdout
    assert {p: p.read_text() for p in histories} == histories  # the same epochs, wall times included: not trained again
    assert all(json.loads(p.read_text())["test_acc"] == s["test_acc"] for p, s in summaries.items())
    assert {p: p.read_text() for p in logs} == logs  # no multirun was started again
    assert (tmp_path / "results" / "small_suite.md").read_text() == timings  # the timings of the call that trained


def test_overrides_need_their_own_directories(tmp_path):
    command = [sys.executable, str(SCRIPT), "--dry-run", "--sweep-dir", str(tmp_path), "--", "data.train_subset=256"]
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "give --sweep-dir and --results-dir other than the defaults" in result.stderr
    assert "data.train_subset=256" in result.stderr


def test_the_readme_section_is_the_committed_tables_with_the_table4_note(tmp_path):
    from scripts import small_suite

    readme = tmp_path / "README.md"
    readme.write_text((REPO / "results" / "README.md").read_text())
    small_suite.update_readme(REPO / "results" / "compare", readme)
    assert readme.read_text() == (REPO / "results" / "README.md").read_text(), \
        "results/README.md is stale: run python scripts/small_suite.py --tables-only"
    section = readme.read_text().split("<!-- small-suite:start -->")[1].split("<!-- small-suite:end -->")[0]
    table4 = (REPO / "results" / "compare" / "table4_small.md").read_text().rstrip().splitlines()
    last_row = section.index(table4[-1])
    assert section.index("PILoT and spred trail random PaI here", last_row) > last_row  # the note follows Table 4
