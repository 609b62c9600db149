from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from sparse.oneshot import prune_global_magnitude
from training.checkpoint import read_checkpoint
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


def _prune_by_hand(state: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Zero the k smallest |w| of all conv/linear weight matrices: one sorted list, k = int(s·n)."""
    names = [k for k, v in state.items() if k.endswith("weight") and v.dim() > 1]
    everything = torch.cat([state[k].abs().flatten() for k in names])
    k = int(sparsity * everything.numel())
    threshold = everything.sort().values[k - 1]
    return {name: (v.masked_fill(v.abs() <= threshold, 0.0) if name in names else v) for name, v in state.items()}


@pytest.mark.slow
def test_oneshot_script_keeps_each_runs_results_and_writes_the_table(tmp_path):
    from omegaconf import OmegaConf

    from training.data import build_data
    from training.models import build_model

    run = tmp_path / "run"
    assert run_train(run, "+experiment=dense", "setting=small").returncode == 0
    out = tmp_path / "oneshot.md"
    command = [sys.executable, "scripts/oneshot_prune.py", str(run), "--sparsities", "0.5", "0.9", "--output", str(out)]
    result = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((run / "oneshot.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert results["test_acc"] == pytest.approx(summary["test_acc"])  # the checkpoint evaluates as the trainer did
    cfg = OmegaConf.create(summary["config"])
    data = build_data(cfg.data, cfg.trainer.batch_size, 1000, cfg.trainer.seed)
    model = build_model(cfg.model, data.in_channels, data.image_size, data.num_classes)
    table = out.read_text()
    for entry in results["pruned"]:  # each pruned accuracy, recomputed from the checkpoint by hand
        model.load_state_dict(_prune_by_hand(read_checkpoint(run / "checkpoint.pt")["model"], entry["target"]))
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in data.test:
                correct, total = correct + int((model(x).argmax(1) == y).sum()), total + len(y)
        assert entry["test_acc"] == pytest.approx(correct / total)
        assert abs(entry["sparsity"] - entry["target"]) < 1e-3
        assert f"| {entry['target']:g} | {100 * entry['test_acc']:.2f} (n=1) | missing |" in table
    before = (run / "oneshot.json").stat().st_mtime_ns  # asked again for fewer: kept, not recomputed
    again = subprocess.run([*command[:3], "--sparsities", "0.9", "--output", str(out)], cwd=REPO, env=env(), capture_output=True, text=True)
    assert again.returncode == 0 and (run / "oneshot.json").stat().st_mtime_ns == before
    assert "| 0.5 |" not in out.read_text() and "| 0.9 |" in out.read_text()
    # without --output the table is printed, and nothing is written but the run's own oneshot.json
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    printed = subprocess.run([sys.executable, str(REPO / "scripts" / "oneshot_prune.py"), str(run), "--sparsities", "0.9"], cwd=elsewhere,
                             env=env(), capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0 and "| 0.9 |" in printed.stdout
    assert not list(elsewhere.iterdir()) and not (REPO / "results" / "oneshot.md").exists()


def test_a_damaged_checkpoint_or_summary_stops_with_exit_code_2(tmp_path):
    run = tmp_path / "run"
    assert run_train(run, "+experiment=dense", "setting=small", "trainer.max_steps_per_epoch=2").returncode == 0
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])  # truncated
    command = [sys.executable, "scripts/oneshot_prune.py", str(run), "--sparsities", "0.5"]
    result = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.startswith("error: ") and str(checkpoint) in result.stderr
    (run / "summary.json").write_text("[1, 2]")
    result = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "summary.json is a JSON list, not a run's summary" in result.stderr
    bad = subprocess.run([*command[:3], "--sparsities", "1.5"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "error: --sparsities 1.5 is not valid" in bad.stderr
