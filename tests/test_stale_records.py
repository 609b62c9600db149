"""Every committed run record is what today's command for its cell would run (configs, presets and
calibration as they are now), so that the committed tables show what their commands produce; a record
kept at an earlier setting on purpose is declared, and the table that shows it says so."""

from __future__ import annotations

import json

from analysis.stale_records import KEPT, RECORDS, RERUN, recorded_command, report, stale
from tests.e2e import REPO
from training.config import compose_config
from training.presets import apply_preset


def test_every_committed_record_is_what_todays_command_for_its_cell_runs():
    folders = sorted({p.parent for p in RECORDS.rglob("*.json")})
    assert {f.relative_to(RECORDS).as_posix() for f in folders} <= set(RERUN) | {k.folder for k in KEPT}  # each has its command
    found = stale(folders)
    assert not found, "stale records:\n" + report(found)


def test_records_kept_at_an_earlier_setting_are_said_so_where_they_are_shown():
    for kept in KEPT:
        assert (RECORDS / kept.folder).is_dir(), kept.folder
        assert kept.folder in (REPO / kept.said_in).read_text(), f"{kept.said_in} does not say why {kept.folder} differs"


def test_a_record_of_another_preset_is_stale_and_the_report_names_it_and_the_command(tmp_path):
    """A copy of an STR record whose weight decay is not today's preset: found, with both values and
    the suite's command for that experiment; the unchanged copy beside it is not."""
    folder = tmp_path / "paper-small"
    folder.mkdir()
    source = RECORDS / "paper-small" / "str__setting=small,sparsity.target=0.9,trainer.seed=0.json"
    cfg = compose_config(["+experiment=str", "setting=small", "sparsity.target=0.9"])
    apply_preset(cfg)
    today = cfg.sparsity.str_weight_decay
    record = json.loads(source.read_text())
    record["config"]["sparsity"]["str_weight_decay"] = today
    (folder / source.name).write_text(json.dumps(record))
    record["config"]["sparsity"]["str_weight_decay"] = 0.0044
    changed = folder / "str__setting=small,sparsity.target=0.9,trainer.seed=1.json"
    changed.write_text(json.dumps(record))
    found = stale([folder])
    assert [s.path for s in found] == [changed]
    assert found[0].differences == [f"sparsity.str_weight_decay: 0.0044 -> {today}"]
    text = report(found)
    assert "1 stale records (str;" in text and "python scripts/small_suite.py --parts table3 table4 --experiments str" in text


def test_a_knob_of_another_method_is_not_compared_and_a_file_name_gives_the_command():
    assert recorded_command(RECORDS / "x" / "pilot__setting=small,sparsity.pilot_alpha=0.0001,sparsity.target=0.8,trainer.seed=2.json") \
        == ("pilot", ["setting=small", "sparsity.pilot_alpha=0.0001", "sparsity.target=0.8"])
    from analysis.stale_records import _method_reads

    assert _method_reads("sparsity.pilot_alpha", "pilot") and not _method_reads("sparsity.str_weight_decay", "pilot")
    assert _method_reads("sparsity.mirror_lr_scale", "spred") and not _method_reads("sparsity.mirror_lr_scale", "rigl")
    assert _method_reads("sparsity.target", "rigl") and _method_reads("ham.alpha", "pilot")
