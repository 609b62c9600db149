"""Calibration files, run records and the planning tool's options are read strictly: each bad input
is one sentence naming the file (and the entry) or the option, exit code 2, and nothing runs.
The calibration reads the committed records of the small STR calibration, copied and damaged."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.compose import compose_config
from tests.e2e import REPO, run_train
from tests.test_paper_tables import paper_tables
from training.presets import CalibrationFileError, calibrated_presets, check_preset, read_calibration

RECORDS = REPO / "results" / "records" / "calibration" / "small_str"
GOOD_ENTRY = "{method: str, ham: false, target: 0.9, value: 0.004}"


@pytest.mark.parametrize("text, message", [
    ("presets: [ {method: str", "cannot be read as a calibration file"),
    ("- 1\n- 2\n", "is not a calibration file (a YAML mapping whose `presets:`"),
    ("presets: !!python/object/apply:os.system ['touch {marker}']\n", "cannot be read as a calibration file"),
    ('presets:\n- {method: str, ham: "false", target: 0.9, value: 0.004}\n',
     "entry 1 of {file} has ham: 'false', which is not valid: it must be true, false or null (a YAML boolean, not a string)"),
    ("presets:\n- " + GOOD_ENTRY + "\n- {method: str, ham: false, target: 0.9, value: 0.005}\n",
     "entries 1 and 2 of {file} are both for method str, ham False, target 0.9: keep one of them, or write it again"),
    ("presets:\n- {method: str, ham: false, target: high, value: 0.004}\n", "entry 1 of {file} has target: 'high'"),
    ("presets:\n- {method: rigl, target: 0.9, value: 0.004}\n", "has method: 'rigl', which is not valid: it must be one of str, pilot, spred"),
    ("presets:\n- {method: str, ham: false, target: 0.9, value: .nan}\n", "has value: nan"),
    ("presets:\n- " + GOOD_ENTRY + "\n- 3\n", "entry 2 of {file} is 3, not a mapping"),
])
def test_a_calibration_file_that_breaks_a_rule_names_the_file_and_the_entry(tmp_path, text, message):
    marker, file = tmp_path / "pwned", tmp_path / "calibration.yaml"
    file.write_text(text.replace("{marker}", str(marker)))
    with pytest.raises(ValueError) as raised:
        read_calibration(file)
    assert message.replace("{file}", str(file)) in str(raised.value)
    with pytest.raises(CalibrationFileError, match=f"sparsity.calibration={file} is not valid: "):
        calibrated_presets(str(file))
    assert not marker.exists()  # the !!python tag built nothing


def test_a_directory_is_no_calibration_file_and_a_good_file_reads_with_its_booleans(tmp_path):
    with pytest.raises(ValueError, match="cannot be read as a calibration file .it is a directory"):
        read_calibration(tmp_path)
    file = tmp_path / "ok.yaml"
    file.write_text("presets:\n- " + GOOD_ENTRY + "\n- {method: str, ham: true, target: 0.9, value: 0.003, seeds: 3}\n")
    presets = calibrated_presets(str(file))
    assert [(p.ham, p.value) for p in presets] == [(False, 0.004), (True, 0.003)]


def test_a_missing_calibration_file_is_named_when_a_run_finds_no_preset(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    cfg = compose_config(["+experiment=str_ham", "setting=small", f"sparsity.calibration={missing}"])
    with pytest.raises(Exception, match=f"its calibration file sparsity.calibration={missing} does not exist"):
        check_preset(cfg)


def test_train_py_refuses_a_string_for_ham_in_the_calibration_file_and_a_number_for_a_boolean_key(tmp_path):
    file = tmp_path / "calibration.yaml"
    file.write_text('presets:\n- {method: str, ham: "false", target: 0.9, value: 0.004}\n')
    result = run_train(tmp_path / "run", "+experiment=str_ham", "setting=small", f"sparsity.calibration={file}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"error: sparsity.calibration={file} is not valid: entry 1 of {file} has ham: 'false'" in result.stderr
    result = run_train(tmp_path / "bool", "sparsity.sign_in_weight_decay=2")
    assert result.returncode == 2 and "error: sparsity.sign_in_weight_decay=2 is not valid: it must be true or false" in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "bool").exists()
    with pytest.raises(Exception, match="ham.enabled=yes is not valid: it must be true or false"):
        compose_config(["ham.enabled=yes"])


def main_fails(capsys, *argv: str) -> str:
    """paper_tables.py's main with these arguments: it must exit 2; its error output."""
    import sys

    saved = sys.argv
    sys.argv = ["paper_tables.py", *argv]
    try:
        with pytest.raises(SystemExit) as exited:
            paper_tables.main()
    finally:
        sys.argv = saved
    assert exited.value.code == 2
    return capsys.readouterr().err


def damaged_records(tmp_path, damage):
    """A copy of the committed small STR calibration records with one grid record changed."""
    records = tmp_path / "records"
    shutil.copytree(RECORDS, records)
    record = records / "str__setting=small,sparsity.str_weight_decay=0.002,trainer.seed=0.json"
    damage(record)
    return records, record


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text(p.read_text()[:200]), "is not a readable run record"),
    (lambda p: p.write_text(""), "is not a readable run record (it is empty)"),
    (lambda p: p.write_text(json.dumps(dict(json.loads(p.read_text()), sparsity="high"))),
     "has sparsity: 'high', which is not valid: a finished run records it as a fraction in [0, 1]"),
    (lambda p: p.write_text("[1, 2]"), "is not a run record (a JSON list, not a mapping)"),
])
def test_a_calibration_from_damaged_records_stops_naming_the_record(tmp_path, capsys, damage, message):
    records, record = damaged_records(tmp_path, damage)
    err = main_fails(capsys, "calibrate", "str", "--setting", "small", "--from-records", str(records),
                     "--report", str(tmp_path / "report.md"), "--presets-file", str(tmp_path / "presets.yaml"))
    assert f"error: {record} {message}" in err
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "presets.yaml").exists()


def test_the_planning_tool_refuses_options_it_cannot_honour(tmp_path, capsys):
    assert "--from-records " + str(tmp_path / "none") + " is not valid: no such folder" in main_fails(
        capsys, "calibrate", "str", "--setting", "small", "--from-records", str(tmp_path / "none"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("presets: [")
    assert f"--presets-file {bad} is not valid: {bad} cannot be read as a calibration file" in main_fails(
        capsys, "calibrate", "str", "--setting", "small", "--dry-run", "--presets-file", str(bad))
    assert "--presets-file" in main_fails(capsys, "calibrate", "str", "--setting", "small", "--dry-run", "--presets-file", str(tmp_path))
    assert "--targets is for calibrate: table3 runs the targets of its table (it has none: its runs are dense)" in main_fails(
        capsys, "table3", "--setting", "small", "--dry-run", "--targets", "0.9")
    for grid in (["0.001"], ["0.001", "0.001"]):
        assert "is not valid: a calibration reads the value for a target off at least two different values" in main_fails(
            capsys, "calibrate", "str", "--setting", "small", "--dry-run", "--grid", *grid)
    err = main_fails(capsys, "table3", "--setting", "small", "--dry-run", "--sweep-dir", str(tmp_path / "runs"), "--", "optimizer.lr=-1")
    assert "error: every job of table3 was refused, so nothing would run; the first: optimizer.lr=-1.0 is not valid" in err


def test_a_negative_seed_a_wrong_class_count_and_a_subset_larger_than_the_data_are_refused():
    from training.config import ConfigError, validate
    from training.data import DataError, build_data

    with pytest.raises(ConfigError, match=r"trainer.seed=-1 is not valid: it must be >= 0"):
        validate(compose_config(["trainer.seed=-1"]))
    with pytest.raises(DataError, match=r"data.num_classes=11 is not valid: data.name=fashion_mnist has 10 classes"):
        build_data(compose_config(["data.num_classes=11"]).data, 128, 1000, 0)
    with pytest.raises(DataError, match=r"data.train_subset=60001 is not valid: data.name=fashion_mnist has 60000 examples"):
        build_data(compose_config(["data.train_subset=60001"]).data, 128, 1000, 0)
    with pytest.raises(DataError, match=r"data.test_subset=300 is not valid: data.name=synthetic \(synthetic_train_size"):
        build_data(compose_config(["data=synthetic", "data.synthetic_test_size=200", "data.test_subset=300"]).data, 16, 64, 0)


def test_a_slurm_variable_that_is_not_a_number_is_one_sentence():
    from training.distributed import DistributedStartError, environment_ranks

    with pytest.raises(DistributedStartError, match=r"the environment variable SLURM_NTASKS='two' is not valid: torchrun and SLURM set "
                                                    r"it to a whole number >= 0; unset it \(`env -u SLURM_NTASKS"):
        environment_ranks({"SLURM_NTASKS": "two", "SLURM_PROCID": "0"})
    with pytest.raises(DistributedStartError, match=r"RANK='x' is not valid"):
        environment_ranks({"RANK": "x", "WORLD_SIZE": "2"})
