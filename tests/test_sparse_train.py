"""Every experiment runs one short epoch in the small setting and reports the sparsity it promises."""

from __future__ import annotations

import math

import pytest

from tests.compose import compose_config, prepare
from training.data import DataError
from training.loop import Trainer

SHORT = ["setting=small", "trainer.epochs=1", "data.train_subset=4096", "data.test_subset=500", "trainer.progress=false",
         "logger=disabled", "sparsity.rigl_delta_t=2", "schedule=constant", "schedule.warmup_epochs=0"]
EXPERIMENTS = ["dense_ham", "dense_sam_ham", "random", "random_signin", "acdc_ham", "rigl", "rigl_signin", "rigl_ham",
               "spred", "pilot", "str_ham"]


@pytest.mark.parametrize(
    "experiment,extra", [(e, []) for e in EXPERIMENTS] + [("rigl_ham", ["optimizer=sam"])], ids=EXPERIMENTS + ["rigl_sam_ham"]
)
def test_one_epoch_small_run_reports_the_promised_sparsity(experiment, extra, tmp_path):
    cfg = compose_config([f"+experiment={experiment}", *SHORT, *extra])
    prepare(cfg)
    trainer = Trainer(cfg, tmp_path)
    summary = trainer.fit()
    trainer.close()
    assert summary["test_acc"] > 0.25  # learned something (chance: 0.1)
    sizes = {name: w.numel() for name, w in trainer.thetas()}
    zeros = {name: int((w == 0).sum()) for name, w in trainer.thetas()}
    total = sum(sizes.values())
    method = cfg.sparsity.method
    if method == "dense":
        assert summary["sparsity"] < 0.01
    elif method in ("random", "rigl"):
        assert summary["sparsity"] == pytest.approx(sum(zeros.values()) / total)
        assert abs(sum(zeros.values()) - 0.9 * total) <= len(sizes)  # ERK counts: floor per layer
    elif method in ("acdc", "spred", "pilot"):  # AC/DC ends compressed; spred/PILoT prune at the end
        assert sum(zeros.values()) >= math.floor(0.9 * total)
    elif method == "str":
        assert 0.0 <= summary["sparsity"] < 1.0  # STR reports what it achieves
    history = trainer.history[-1]
    assert set(history["layer_density"]) == set(sizes)
    if method == "rigl":
        assert history["rigl_regrown"] > 0


def test_imagenet_experiment_stops_with_a_clear_error_without_the_files(tmp_path):
    cfg = compose_config(["+experiment=rigl_ham", "logger=disabled"])
    with pytest.raises(DataError, match=r"FFCV files not found.*data.root is not set.*setting=small"):
        Trainer(cfg, tmp_path)
