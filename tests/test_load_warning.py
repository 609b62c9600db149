"""A machine already busier than its cores is said once at start, with the key to set; the default
(torch's threads) is not changed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e import REPO, SMALL, env
from training.loop import load_warning


def test_the_warning_names_the_load_the_cores_and_the_key():
    assert load_warning(2.0, 2, 2) is None and load_warning(0.3, 16, 16) is None
    text = load_warning(3.25, 2, 2)
    assert text.startswith("warning: the machine's load (1-minute average 3.2) already exceeds its 2 cores")
    assert "uses 2 torch thread(s)" in text and "set trainer.threads=1" in text
    alone = load_warning(3.25, 2, 1)  # one thread already: the key would change nothing
    assert "uses 1 torch thread(s)" in alone and "trainer.threads" not in alone and "run fewer jobs side by side" in alone


@pytest.mark.slow
def test_train_py_on_a_loaded_machine_warns_once_and_keeps_its_threads(tmp_path):
    """train.py run with os.getloadavg reporting a load of 9 on this machine's cores."""
    program = ("import os, runpy, sys; os.getloadavg = lambda: (9.0, 9.0, 9.0); "
               f"sys.argv = ['train.py', 'hydra.run.dir={tmp_path}', *{SMALL[:-1]!r}]; "
               f"runpy.run_path({str(REPO / 'train.py')!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if "already exceeds its" in line]
    assert len(warnings) == 1 and "load (1-minute average 9.0)" in warnings[0]
    default = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True, text=True,
                             env=env(), check=True).stdout.strip()
    assert f"uses {default} torch thread(s)" in warnings[0]
    assert json.loads((tmp_path / "summary.json").read_text())["threads"] == int(default)  # not changed behind the user's back
