"""scripts/paper_tables.py: every cell of a table, where Hydra puts it, what it costs, and a real launch."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests import launch
from tests.e2e import REPO, env

SCRIPT = REPO / "scripts" / "paper_tables.py"
spec = importlib.util.spec_from_file_location("paper_tables", SCRIPT)
paper_tables = importlib.util.module_from_spec(spec)
sys.modules["paper_tables"] = paper_tables  # its dataclasses look their module up
spec.loader.exec_module(paper_tables)  # type: ignore[union-attr]


def test_table4_has_every_method_target_and_seed_and_refuses_the_str_cells_without_a_preset(tmp_path):
    """Also in a process that imported train.py, whose hook fills the preset knobs when the command
    line is composed: the tools' compose() used to get STR's 90 % knob filled before each job's target
    was set, so the 80 and 95 % cells ran at the 90 % value instead of being refused (seen when a
    test that imported train.py ran first in the same worker)."""
    from training.presets import fill_presets_when_composed

    fill_presets_when_composed()  # what importing train.py does; it stays installed in this process
    jobs = paper_tables.expand("table4", "imagenet", 3, tmp_path, [])
    assert len(jobs) == 13 * 3 * 3
    knobs = {float(j.cfg.sparsity.target): j.cfg.sparsity.str_weight_decay for j in jobs if j.experiment == "str"}
    assert knobs[0.8] is None and knobs[0.95] is None and knobs[0.9] is not None
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
    first = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
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
    second = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "4 jobs: 4 done, 0 to run, 0 refused" in second.stdout and "train.py --multirun" not in second.stdout  # nothing relaunched


def test_a_multirun_whose_runs_all_finished_as_configured_is_not_launched_again(tmp_path):
    """A job is done when its summary.json holds the configuration the job has now (trajectory keys);
    a summary of another configuration (an experiment file changed since) or a damaged one is
    launched again, and so is the rest of its multirun."""
    from training.records import recorded

    jobs = paper_tables.expand("oneshot", "small", 2, tmp_path, ["trainer.epochs=1"])
    assert len(jobs) == 4 and all(paper_tables.status(j) == "new" for j in jobs)

    def finish(job, config):
        job.run_dir.mkdir(parents=True, exist_ok=True)
        (job.run_dir / "summary.json").write_text(json.dumps({"test_acc": 0.5, "config": config}))

    for job in jobs:
        finish(job, dict(recorded(job.cfg), logger={"wandb": {"mode": "online"}}, trainer=dict(recorded(job.cfg)["trainer"], threads=7)))
    assert [paper_tables.status(j) for j in jobs] == ["done"] * 4  # logger and threads do not change what is trained
    assert paper_tables.multirun_commands(jobs, "basic", tmp_path, []) == []
    changed = dict(recorded(jobs[0].cfg), optimizer=dict(recorded(jobs[0].cfg)["optimizer"], lr=0.2))
    finish(jobs[0], changed)
    (jobs[3].run_dir / "summary.json").write_text("{not json")
    assert [paper_tables.status(j) for j in jobs] == ["changed", "done", "done", "changed"]
    commands = paper_tables.multirun_commands(jobs, "basic", tmp_path, [])
    experiments = sorted(next(a for a in c if a.startswith("+experiment=")) for c in commands)
    assert experiments == [f"+experiment={jobs[0].experiment}", f"+experiment={jobs[3].experiment}"]
    assert jobs[0].experiment != jobs[3].experiment and all("trainer.seed=0,1" in c for c in commands)


def test_each_cell_is_composed_once_not_each_job(tmp_path, monkeypatch):
    """The dry run composed every job (117 for Table 4, about a minute); now one per cell (13)."""
    calls = []
    real = paper_tables.compose_config
    monkeypatch.setattr(paper_tables, "compose_config", lambda overrides: calls.append(overrides) or real(overrides))
    checks = {"validate": 0, "validate_sparsity": 0}
    for name in checks:
        real_check = getattr(paper_tables, name)
        monkeypatch.setattr(paper_tables, name, lambda cfg, name=name, real_check=real_check: checks.update({name: checks[name] + 1})
                            or real_check(cfg))
    jobs = paper_tables.expand("table4", "imagenet", 3, tmp_path, ["trainer.epochs=50"])
    assert len(calls) == 13 and len(jobs) == 117
    # one check per cell and target (the seeds share it): whole until one passed (a refused target, STR's
    # without a preset, is no proof for the others), then only the sparsity group
    targets = list(dict.fromkeys((j.experiment, j.overrides[0]) for j in jobs))
    assert sum(checks.values()) == len(targets) == 39
    refused = {(j.experiment, j.overrides[0]) for j in jobs if j.refused}
    whole = sum(next((i + 1 for i, t in enumerate(t for t in targets if t[0] == e) if t not in refused), 3)
                for e in dict.fromkeys(t[0] for t in targets))
    assert checks["validate"] == whole and whole < 39
    # every job's configuration is the one Hydra composes for it (a few checked by composing them in full)
    for job in jobs[::29]:
        full = real([f"+experiment={job.experiment}", *job.overrides])
        try:
            paper_tables.apply_preset(full)
            paper_tables.validate(full)
        except paper_tables.ConfigError:
            assert job.refused
            continue
        assert OmegaConf.to_container(job.cfg, resolve=True) == OmegaConf.to_container(full, resolve=True)


def _paper_tables(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return launch.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=300)


def test_an_imagenet_table_without_its_data_is_refused_before_anything_starts(tmp_path):
    result = _paper_tables("table4", "--sweep-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and "error: data.root is not set" in result.stderr and "data.root=" in result.stderr
    assert not (tmp_path / "runs").exists() and "+ " not in result.stdout
    result = _paper_tables("table3", "--sweep-dir", str(tmp_path / "runs"), "--", f"data.root={tmp_path}")
    assert result.returncode == 2 and f"data.root={tmp_path} is not valid: it has no train.beton and no val.beton" in result.stderr
    dry = _paper_tables("table4", "--dry-run", "--sweep-dir", str(tmp_path / "runs"))
    assert dry.returncode == 0 and "note: a launch would stop here: data.root is not set" in dry.stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_the_basic_launcher_on_a_machine_without_a_gpu_is_refused_with_the_slurm_command(tmp_path):
    (tmp_path / "train.beton").touch()
    (tmp_path / "val.beton").touch()
    result = _paper_tables("table3", "--sweep-dir", str(tmp_path / "runs"), "--", f"data.root={tmp_path}")
    assert result.returncode == 2 and "which has no GPU" in result.stderr and "--launcher slurm" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_printed_commands_run_as_printed_from_any_directory(tmp_path):
    quick = ["trainer.epochs=1", "data.train_subset=512", "data.test_subset=500", "logger=disabled", "trainer.threads=1"]
    dry = _paper_tables("oneshot", "--setting", "small", "--seeds", "1", "--dry-run", "--sweep-dir", str(tmp_path / "runs"), "--", *quick)
    assert dry.returncode == 0, dry.stderr[-2000:]
    commands = [shlex.split(line[2:]) for line in dry.stdout.splitlines() if line.startswith("+ ")]
    # the training jobs, then the pruning step that needs them
    assert [c[1] for c in commands] == [str(REPO / "train.py")] * 2 + [str(REPO / "scripts" / "oneshot_prune.py")]
    assert all(c[0] == sys.executable for c in commands)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in commands:
        result = launch.run(command, cwd=elsewhere, env=env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    again = _paper_tables("oneshot", "--setting", "small", "--seeds", "1", "--dry-run", "--sweep-dir", str(tmp_path / "runs"), "--", *quick)
    assert "2 jobs: 2 done, 0 to run, 0 refused" in again.stdout
    assert (tmp_path / "runs" / "oneshot.md").exists()  # the pruning step wrote its table where the dry run said


@pytest.mark.parametrize("override, message", [
    ("trainer.epochs=ten", "Error merging override trainer.epochs=ten: Value 'ten' of type 'str' could not be converted to Integer"),
    ("+trainer.epoch=3", "trainer.epoch is not a config key; did you mean trainer.epochs?"),  # Hydra's + adds any key: refused by us
])
def test_a_bad_override_after_the_double_dash_is_one_sentence_and_exit_code_2(tmp_path, override, message):
    for script, options in (("paper_tables.py", ["table4", "--setting", "small", "--dry-run", "--sweep-dir", str(tmp_path / "t")]),
                            ("small_suite.py", ["--dry-run", "--sweep-dir", str(tmp_path / "s"), "--results-dir", str(tmp_path / "r")])):
        result = launch.run([sys.executable, str(REPO / "scripts" / script), *options, "--", override], cwd=REPO, env=env(),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert result.stderr.startswith(f"error: {message}") and f"(in the overrides after --: {override})" in result.stderr
    assert not any(tmp_path.iterdir())


def test_every_option_says_what_it_does():
    actions = [a for a in paper_tables.build_parser()._actions if a.dest != "help"]
    assert len(actions) >= 16 and [a.dest for a in actions if not a.help] == []


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_a_table4_dry_run_adds_up_the_table_and_its_calibrations_expected_and_at_worst(tmp_path):
    result = launch.run([sys.executable, str(SCRIPT), "table4", "--dry-run", "--sweep-dir", str(tmp_path)], cwd=REPO, env=env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    import re

    table = _number(re.search(r"GPU-hours for the table, ([\d,]+) still to run", result.stdout).group(1))
    calibrations = [line for line in lines if line.startswith("calibration ")]
    assert len(calibrations) == 4  # spred, pilot, str, str_ham
    expected = worst = table
    for line in calibrations:
        one = _number(re.search(r"one verification round \(([\d,]+) GPU-hours\)", line).group(1))
        most = re.search(r"at worst \(3 rounds: ([\d,]+) GPU-hours\)", line)
        expected, worst = expected + one, worst + (_number(most.group(1)) if most else one)
    total = next(line for line in lines if line.startswith("total still to run: "))
    found = re.search(r"([\d,]+) GPU-hours expected .*?, ([\d,]+) at worst", total)
    assert abs(_number(found.group(1)) - expected) <= 2 and abs(_number(found.group(2)) - worst) <= 2  # rounded parts
    assert worst > expected
    # each job's wall-clock time on the profile: its GPU-hours over the profile's 8 GPUs
    job = next(line for line in lines if line.startswith("new ") and "/random/" in line)
    gpu_h, wall_h = (float(x) for x in re.search(r"([\d.]+) GPU-h, ([\d.]+) h wall-clock on 8 GPUs", job).groups())
    assert wall_h == pytest.approx(gpu_h / 8, abs=0.06)


def test_a_small_calibration_dry_run_says_how_long_it_takes_and_where_its_runs_go(tmp_path):
    result = launch.run([sys.executable, str(SCRIPT), "calibrate", "str", "--setting", "small", "--dry-run", "--sweep-dir", str(tmp_path)],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # 11 grid runs of 10 epochs at 2 s an epoch (configs/cluster/throughput.yaml): 220 s; a round: 9 runs, 180 s
    assert "-- grid of sparsity.str_weight_decay (one seed): 11 runs (about 4 min one after another)" in result.stdout
    assert "in all about 7 min one after another with one round, about 13 min one after another at worst" in result.stdout
    dirs = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("new ")]
    assert dirs and all(d.startswith(f"{tmp_path}/str/setting=small,") for d in dirs)  # no doubled str/str/


@pytest.mark.parametrize("key,value", [("gpus_per_job", 0), ("small_seconds_per_epoch", -2.0), ("gpu_hours_per_epoch", ".nan")])
def test_a_throughput_figure_that_is_not_a_positive_number_stops_naming_it(tmp_path, monkeypatch, capsys, key, value):
    profile = OmegaConf.load(paper_tables.THROUGHPUT)
    profile[key] = float("nan") if value == ".nan" else value
    path = tmp_path / "throughput.yaml"
    OmegaConf.save(profile, path)
    monkeypatch.setattr(paper_tables, "THROUGHPUT", path)
    paper_tables.throughput_profile.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            paper_tables.throughput_profile()
    finally:
        paper_tables.throughput_profile.cache_clear()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(f"error: {key}=") and f"in {path} is not valid: it must be a positive number" in err


def test_help_imports_neither_torch_nor_hydras_composition():
    """``--help`` answers before anything heavy runs (it took 4 s idle when the checkpoint module came
    with the script's imports): torch is not imported and Hydra composes nothing."""
    probe = ("import runpy, sys\n"
             "import hydra\n"
             "composed = []\n"
             "hydra.compose = lambda *args, **kwargs: composed.append(args)\n"
             f"sys.argv = [{str(SCRIPT)!r}, '--help']\n"
             "try:\n"
             f"    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
             "except SystemExit:\n"
             "    pass\n"
             "from hydra.core.global_hydra import GlobalHydra\n"
             "print('torch' in sys.modules, bool(composed), GlobalHydra.instance().is_initialized())\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: paper_tables.py" in result.stdout and result.stdout.strip().endswith("False False False")
