"""Every figure command runs on records (configs composed as train.py does, metrics made up here:
the plots are under test, not the numbers) and writes a non-empty PNG."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.compose import compose_config
from tests.e2e import REPO, env
from training.config import validate


def _record(folder, overrides, acc, sparsity=0.0, failed=False, name=None):
    cfg = compose_config(overrides)
    validate(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    history = [{"epoch": e, "sign_flips": 1000 // e, "test_acc": acc} for e in range(1, 4)]
    record = {"config": config, "failed": True, "error": "diverged"} if failed else {
        "config": config, "test_acc": acc, "sparsity": sparsity, "epoch": 3, "history": history}
    path = folder / f"{name or cfg.name}_{cfg.trainer.seed}_{cfg.sparsity.target}_{cfg.ham.alpha}_{cfg.ham.beta}.json"
    path.write_text(json.dumps(record))


@pytest.fixture
def records(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    for experiment in ("random", "random_signin", "random_ham", "rigl", "rigl_ham", "str", "str_ham"):
        for target in (0.8, 0.9, 0.95):
            for seed in (0, 1):
                _record(folder, [f"+experiment={experiment}", "setting=small", f"sparsity.target={target}", f"trainer.seed={seed}",
                                 "trainer.epochs=3"], 0.9 - target / 10 + seed / 100, target)
    for alpha in (5.0, 20.0, 200.0):
        for beta in (0.0, 1e-3):
            _record(folder, ["+experiment=dense_ham", "setting=small", f"ham.alpha={alpha}", f"ham.beta={beta}"], 0.89,
                    failed=alpha == 200.0, name=f"grid{alpha}_{beta}")
    return folder


@pytest.mark.parametrize("figure", ["sign-flips", "accuracy-sparsity", "ham-grid"])
def test_figure_command_writes_a_png(records, tmp_path, figure):
    output = tmp_path / f"{figure}.png"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "figures.py"), figure, str(records), "--output", str(output)],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.stat().st_size > 10_000


def test_a_figure_without_its_runs_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "figures.py"), "sign-flips", str(tmp_path / "empty")],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "no finished random/random_signin/random_ham runs" in result.stderr
