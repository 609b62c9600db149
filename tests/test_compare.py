"""scripts/compare.py on real run directories (short runs made here), and the W&B path with a small
stand-in for ``wandb.Api`` (the service cannot run here): grouping, mean/std by hand, the paper's
values in their columns, missing cells, failed and unfinished runs listed and not averaged."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from analysis import runs as R
from analysis import tables as T
from tests import launch
from tests.e2e import REPO, env, kill_after_first_epoch, run_train, torchrun, torchrun_failure, train_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    # dense and dense_ham, seeds 0 and 1: one multirun (one process) into root/<experiment>_<seed>
    command = train_command(root / "unused", "+experiment=dense,dense_ham", "setting=small", "trainer.seed=0,1", f"hydra.sweep.dir={root}",
                            "hydra.sweep.subdir=${name}_${trainer.seed}")
    result = launch.run([*command[:2], "--multirun", *command[3:]], cwd=REPO, env=env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.parent.name for p in root.glob("*/summary.json")) == ["dense_0", "dense_1", "dense_ham_0", "dense_ham_1"]
    # a failed job of a sweep (a refused value) and an unfinished run (killed after one of 3 epochs)
    command = train_command(root / "unused", "+experiment=rigl_ham", "setting=small", "trainer.divergence_factor=0.01",
                            f"hydra.sweep.dir={root / 'sweep'}")
    failed = launch.run([*command[:2], "--multirun", *command[2:]], cwd=REPO, env=env(), capture_output=True, text=True)
    assert failed.returncode == 1, failed.stderr[-2000:]
    kill_after_first_epoch(root / "killed", ["+experiment=random", "setting=small", "trainer.epochs=3"], epochs=3)
    return root


def _mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{100 * mean:.2f} ± {100 * std:.2f} (n={len(values)})"


def test_tables_from_run_directories(run_root, tmp_path):
    runs = R.from_disk([run_root])
    assert sorted(r.status for r in runs) == ["failed", "finished", "finished", "finished", "finished", "unfinished"]
    rows = T.table3(runs, "small")
    assert rows[0][:3] == ["", "SGD 1 ep (paper: 10 ep)", "SAM 1 ep (paper: 10 ep)"]  # the run length found
    # every key in which the runs differ from the small setting's defaults is on the row, though all runs share them
    shared = "data.test_subset=1000, data.train_subset=2048, schedule.name=constant"  # and 1 epoch: the column says so
    for label, experiment in (("Baseline", "dense"), ("HAM", "dense_ham")):
        accs = [json.loads((run_root / f"{experiment}_{s}" / "summary.json").read_text())["test_acc"] for s in (0, 1)]
        row = next(r for r in rows if r[0].startswith(f"{label} ["))
        assert shared in row[0], row[0]
        assert row[1] == _mean_std(accs)  # computed here from the summaries
        assert row[2] == "missing"  # no SAM run
    reference = json.loads(T.REFERENCE.read_text())["dense"]
    ham_row = next(r for r in rows if r[0].startswith("HAM ["))
    assert ham_row[3] == f"{reference['dense_ham']['100ep'][0]:.2f} ± {reference['dense_ham']['100ep'][1]:.2f}"
    gains = T.gains(runs, "small")
    assert len(gains) == 2 and gains[1][0] == "dense" and gains[1][-1] in ("yes", "no")
    listed = T.not_averaged(runs)
    assert any(line.startswith("failed:") and "divergence_factor=0.01 is not valid" in line for line in listed)
    assert any(line.startswith("unfinished:") and "killed" in line for line in listed)
    result = launch.run([sys.executable, str(REPO / "scripts" / "compare.py"), str(run_root), "--output-dir", str(tmp_path)],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "6 runs: 4 finished, 1 failed, 1 unfinished" in result.stdout
    # the CSVs hold numbers: mean, std, n (and p, p_holm for the gains), computed here from the summaries
    cells3 = {r["experiment"]: r for r in csv.DictReader(io.StringIO((tmp_path / "table3_small.csv").read_text()))}
    for experiment in ("dense", "dense_ham"):
        accs = [100 * json.loads((run_root / f"{experiment}_{s}" / "summary.json").read_text())["test_acc"] for s in (0, 1)]
        mean = sum(accs) / 2
        assert float(cells3[experiment]["mean_pct"]) == pytest.approx(mean, abs=1e-9)
        assert float(cells3[experiment]["std_pct"]) == pytest.approx((sum((a - mean) ** 2 for a in accs)) ** 0.5, abs=1e-9)
        assert int(cells3[experiment]["n"]) == 2
    gain = next(csv.DictReader(io.StringIO((tmp_path / "gains_small.csv").read_text())))
    assert float(gain["p_holm"]) == pytest.approx(float(gain["p"]))  # one test: Holm leaves it as it is
    assert 0 <= float(gain["p"]) <= 1


def test_compare_writes_files_only_where_it_is_told(run_root, tmp_path):
    committed = {p: p.read_bytes() for p in (REPO / "results" / "compare").glob("*")}
    result = launch.run([sys.executable, str(REPO / "scripts" / "compare.py"), str(run_root)], cwd=tmp_path, env=env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "## Table 3 (dense), small setting" in result.stdout
    assert not list(tmp_path.iterdir()) and {p: p.read_bytes() for p in (REPO / "results" / "compare").glob("*")} == committed


def test_the_wandb_source_gives_the_same_tables(run_root):
    disk = [r for r in R.from_disk([run_root]) if r.status == "finished"]

    class StandInApi:  # what the code reads of wandb.Api().runs(path): state, id, config, summary
        def runs(self, path):
            assert path == "me/ham"
            return [SimpleNamespace(state="finished", id=str(i), config=r.config, summary={**r.summary, "_step": 1})
                    for i, r in enumerate(disk)] + [SimpleNamespace(state="crashed", id="x", config=disk[0].config, summary={})]

    remote = R.from_wandb("me/ham", api=StandInApi())
    assert [r.status for r in remote] == ["finished"] * 4 + ["failed"]
    assert T.table3(remote, "small") == T.table3(disk, "small")


def test_archived_records_keep_history_and_oneshot_results_and_give_the_same_tables(run_root, tmp_path):
    dense = [run_root / f"{e}_{s}" for e in ("dense", "dense_ham") for s in (0, 1)]
    pruned = launch.run([sys.executable, str(REPO / "scripts" / "oneshot_prune.py"), *map(str, dense), "--sparsities", "0.5", "0.9",
                             "--output", str(tmp_path / "oneshot.md")], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert pruned.returncode == 0, pruned.stderr[-2000:]
    sweep = tmp_path / "sweep"  # the layout of a Hydra sweep: <sweep>/<experiment>/<overrides>/
    for run_dir in dense:
        shutil.copytree(run_dir, sweep / run_dir.name.rsplit("_", 1)[0] / f"trainer.seed={run_dir.name[-1]}")
    shutil.copytree(run_root / "sweep", sweep, dirs_exist_ok=True)  # the failed job
    assert R.archive(sweep, tmp_path / "records") == 5
    archived = R.from_disk([tmp_path / "records"])
    assert sorted(r.status for r in archived) == ["failed"] + ["finished"] * 4
    for run_dir in dense:
        record = json.loads((tmp_path / "records" / f"{run_dir.name.rsplit('_', 1)[0]}__trainer.seed={run_dir.name[-1]}.json").read_text())
        assert record["history"] == [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
        assert record["oneshot"] == json.loads((run_dir / "oneshot.json").read_text())
    on_disk = R.from_disk(dense)
    assert T.oneshot(archived, "small") == T.oneshot(on_disk, "small")
    rows = T.oneshot(on_disk, "small")
    for row, fraction in zip(rows[2:], (0.5, 0.9)):
        for column, experiment in ((1, "dense"), (2, "dense_ham")):
            accs = [p["test_acc"] for s in (0, 1) for p in json.loads((run_root / f"{experiment}_{s}" / "oneshot.json").read_text())["pruned"]
                    if p["target"] == fraction]
            assert row[column] == _mean_std(accs)
    result = launch.run([sys.executable, str(REPO / "scripts" / "compare.py"), str(tmp_path / "records"), "--output-dir",
                             str(tmp_path / "out")], cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "oneshot_small.md").read_text().count("\n| 0.") == 2  # in "all" when runs have the results


@pytest.fixture(scope="module")
def variant_root(tmp_path_factory, run_root) -> Path:
    """Real short runs of one experiment that differ in one key at a time (and two seeds of the
    base: run_root's dense_ham runs), one run of the base under torchrun (2 processes), and an
    empty job directory."""
    root = tmp_path_factory.mktemp("variants")
    base = ["+experiment=dense_ham", "setting=small"]
    for seed in (0, 1):  # the same command as the base's (trainer.seed=0 is the default): not run twice
        shutil.copytree(run_root / f"dense_ham_{seed}", root / f"base_{seed}")
    for name, extra in (("alpha", ["ham.alpha=100"]), ("steps", ["trainer.max_steps_per_epoch=5"]), ("batch", ["trainer.batch_size=64"])):
        result = run_train(root / name, *base, *extra)
        assert result.returncode == 0, result.stderr[-2000:]
    result = torchrun(*train_command(root / "two_processes", *base)[1:])
    assert result.returncode == 0, torchrun_failure(result.stderr)
    (root / "sweep" / "dense_ham" / "trainer.seed=5").mkdir(parents=True)  # a job that never wrote anything
    return root


def test_runs_that_differ_in_anything_but_the_seed_are_never_averaged(variant_root):
    runs = R.from_disk([variant_root])
    assert sorted(r.status for r in runs) == ["finished"] * 6 + ["unfinished"]
    assert T.duplicates(runs) == []  # the torchrun run is not a duplicate of the one-process run
    grouped = {k: c for k, c in T.cells(runs, "small").items() if k[0] == "dense_ham"}
    assert sorted(len(c.runs) for c in grouped.values()) == [1, 1, 1, 1, 2]

    def acc(name):
        return json.loads((variant_root / name / "summary.json").read_text())["test_acc"]

    by_label = {k[3]: c for k, c in grouped.items()}
    for name, marker in (("alpha", "ham.alpha=100"), ("steps", "trainer.max_steps_per_epoch=5"), ("batch", "trainer.batch_size=64"),
                         ("two_processes", "world_size=2")):
        label = next(label for label in by_label if marker in label)
        assert by_label[label].accs == [acc(name)], name
    base = next(c for c in by_label.values() if len(c.runs) == 2)
    assert sorted(base.accs) == sorted([acc("base_0"), acc("base_1")])
    rows = T.table3(runs, "small")
    ham_rows = [r for r in rows if r[0].startswith("HAM")]
    assert ham_rows[0][:2] == ["HAM", "variants below"] and len(ham_rows) == 6
    assert any("ham.alpha=100" in r[0] and r[1] == f"{100 * acc('alpha'):.2f} (n=1)" for r in ham_rows)


def test_gains_compare_only_comparable_runs(variant_root, tmp_path):
    """A baseline run cut to 5 steps is not compared with full + HAM runs: refused with the key."""
    short = tmp_path / "short_baseline"
    result = run_train(short, "+experiment=dense", "setting=small", "trainer.max_steps_per_epoch=5")
    assert result.returncode == 0, result.stderr[-2000:]
    runs = [r for r in R.from_disk([variant_root, short]) if r.status == "finished" and "steps" not in r.source]
    records = T.gain_records(runs, "small")
    assert [r.get("not_comparable") for r in records] == ["trainer.max_steps_per_epoch"]
    rows = T.gains(runs, "small")
    assert rows[1][-1] == "not comparable: the runs differ in trainer.max_steps_per_epoch"


def test_a_job_directory_without_records_is_listed_as_unfinished(variant_root):
    result = launch.run([sys.executable, str(REPO / "scripts" / "compare.py"), str(variant_root / "sweep")], cwd=REPO, env=env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 runs: 0 finished, 0 failed, 1 unfinished" in result.stdout
    assert "unfinished: " + str(variant_root / "sweep" / "dense_ham" / "trainer.seed=5") + " (no records" in result.stdout


DAMAGES = {  # run directory (a copy of dense_ham_1): the file damaged, its new content, the reason listed
    "not-json": ("summary.json", "{not json", "summary.json is not valid JSON"),
    "a-list": ("summary.json", "[1, 2]", "summary.json is a JSON list, not a run's summary"),
    "no-config": ("summary.json", '{"test_acc": 0.5}', "summary.json has no run config"),
    "config-not-yaml": (".hydra/config.yaml", "name: [unclosed\n", ".hydra/config.yaml is not YAML"),
}


def test_damaged_runs_and_missing_sources_are_listed_and_the_good_runs_compared(run_root, tmp_path):
    """Each damage in its own copy of a finished run, all in one tree beside the good runs: one
    compare call lists every damaged run with its reason and still compares the good ones."""
    copy = tmp_path / "runs"
    shutil.copytree(run_root, copy, ignore=shutil.ignore_patterns("dense_ham_1"))
    for name, (damage, content, _) in DAMAGES.items():
        damaged = copy / f"damaged_{name}"
        shutil.copytree(run_root / "dense_ham_1", damaged)
        if damage == ".hydra/config.yaml":
            (damaged / "summary.json").unlink()  # a run without a summary is described by its config
        (damaged / damage).write_text(content)
    compare = [sys.executable, str(REPO / "scripts" / "compare.py")]
    result = launch.run([*compare, str(copy), str(tmp_path / "missing"), "--table", "3"], cwd=REPO, env=env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    for name, (damage, _, reason) in DAMAGES.items():
        damaged = copy / f"damaged_{name}"
        assert f"unreadable: {damaged} ({damaged / damage} {reason.split(damage + ' ')[1]}" in result.stdout
    assert f"unreadable: {tmp_path / 'missing'} (does not exist)" in result.stdout
    accs = [json.loads((copy / f"dense_{s}" / "summary.json").read_text())["test_acc"] for s in (0, 1)]
    assert re.search(r"\| Baseline \[[^]]*\] \| " + re.escape(_mean_std(accs)) + r" \|", result.stdout)  # the good runs still make their cells
    damaged = [str(copy / f"damaged_{name}") for name in DAMAGES]
    nothing = launch.run([*compare, *damaged, str(tmp_path / "missing")], cwd=REPO, env=env(), capture_output=True, text=True,
                             timeout=300)
    assert nothing.returncode == 2 and nothing.stderr.startswith("error: no run could be read in"), nothing.stderr
    assert all(reason in nothing.stderr for _, _, reason in DAMAGES.values()) and "does not exist" in nothing.stderr


def test_compare_without_wandb_credentials_is_one_sentence(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"HOME": str(tmp_path), "PYTHONPATH": str(repo)}
    result = launch.run([sys.executable, "scripts/compare.py", "--wandb", "me/ham"], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --wandb me/ham needs W&B credentials") and "wandb login" in result.stderr
