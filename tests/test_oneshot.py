from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sparse.oneshot import prune_global_magnitude
from tests.e2e import REPO, env, run_train


def test_global_magnitude_pruning_removes_the_smallest_weights_over_all_layers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    weights = torch.cat([model[0].weight.detach().abs().flatten(), model[2].weight.detach().abs().flatten()])
    threshold = weights.sort().values[int(0.7 * weights.numel()) - 1]  # the 70 % quantile, by hand
    biases = [model[0].bias.detach().clone(), model[2].bias.detach().clone()]
    achieved = prune_global_magnitude(model, 0.7)
    assert achieved == pytest.approx(int(0.7 * 300) / 300)
    for layer in (model[0], model[2]):
        w = layer.weight.detach()
        assert (w[w != 0].abs() > threshold).all()
    assert torch.equal(model[0].bias, biases[0]) and torch.equal(model[2].bias, biases[1])  # only weights


@pytest.mark.slow
def test_oneshot_script_writes_a_table(tmp_path):
    run = tmp_path / "run"
    assert run_train(run).returncode == 0
    out = tmp_path / "oneshot.md"
    result = subprocess.run([sys.executable, "scripts/oneshot_prune.py", str(run), "--sparsities", "0.5", "0.9", "--output", str(out)],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 0.5") or line.startswith("| 0.9")]
    assert len(rows) == 2 and "reference" in table
    acc_50, acc_90 = (float(r.split("|")[2]) for r in rows)
    assert acc_50 >= acc_90  # more pruning, no better
