from __future__ import annotations

import json
import re
import sys

import pytest
import torch

from sparse.oneshot import prune_global_magnitude, recalibrate_batch_norm
from training.checkpoint import read_checkpoint
from tests import launch
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


def _batch_norm_statistics_by_hand(model: torch.nn.Module, batches: list[torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per BatchNorm layer: the mean over the batches of each batch's per-channel mean and unbiased
    variance of the layer's input, read with forward hooks while the model runs in training mode."""
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            def hook(_, inputs, __, name=name):
                x = inputs[0].transpose(0, 1).flatten(1)  # channels x (batch · height · width)
                seen.setdefault(name, []).append((x.mean(1), x.var(1, unbiased=True)))
            hooks.append(module.register_forward_hook(hook))
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    for h in hooks:
        h.remove()
    return {name: (torch.stack([m for m, _ in s]).mean(0), torch.stack([v for _, v in s]).mean(0)) for name, s in seen.items()}


def test_batch_norm_recalibration_averages_each_batchs_statistics_and_keeps_the_weights():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    batches = [torch.randn(5, 1, 8, 8) * (i + 1) + i for i in range(4)]
    for bn in (model[1], model[4]):  # stale statistics, as after a prune
        bn.running_mean.fill_(7.0)
        bn.running_var.fill_(0.01)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    prune_global_magnitude(model, 0.5)
    pruned = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    import copy

    expected = _batch_norm_statistics_by_hand(copy.deepcopy(model), batches[:3])
    recalibrate_batch_norm(model, iter(batches), 3)  # the first 3 of 4 batches
    assert not model.training
    for name, (mean, var) in expected.items():
        bn = dict(model.named_modules())[name]
        assert torch.allclose(bn.running_mean, mean, atol=1e-5) and torch.allclose(bn.running_var, var, rtol=1e-4)
        assert bn.momentum == 0.1  # restored
    after = {k: v for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    assert all(torch.equal(after[k], pruned[k]) for k in after) and any(not torch.equal(weights[k], pruned[k]) for k in weights)


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
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
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
    again = launch.run([*command[:3], "--sparsities", "0.9", "--output", str(out)], cwd=REPO, env=env(), capture_output=True, text=True)
    assert again.returncode == 0 and (run / "oneshot.json").stat().st_mtime_ns == before
    assert "| 0.5 |" not in out.read_text() and "| 0.9 |" in out.read_text()
    # without --output the table is printed, and nothing is written but the run's own oneshot.json
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    printed = launch.run([sys.executable, str(REPO / "scripts" / "oneshot_prune.py"), str(run), "--sparsities", "0.9"], cwd=elsewhere,
                             env=env(), capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0 and "| 0.9 |" in printed.stdout
    assert not list(elsewhere.iterdir()) and not (REPO / "results" / "oneshot.md").exists()
    # the checkpoint changes (the run continued, or was replaced): the cache is keyed on its digest, so it is computed again
    from training.checkpoint import DIGEST_KEY, save_atomic

    payload = read_checkpoint(run / "checkpoint.pt")
    payload["model"] = {name: torch.zeros_like(t) if t.ndim >= 2 else t for name, t in payload["model"].items()}
    save_atomic({k: v for k, v in payload.items() if k not in (DIGEST_KEY, "format")}, run / "checkpoint.pt")
    changed = launch.run([*command[:3], "--sparsities", "0.9", "--output", str(out)], cwd=REPO, env=env(), capture_output=True, text=True)
    assert changed.returncode == 0, changed.stderr[-2000:]
    recomputed = json.loads((run / "oneshot.json").read_text())
    assert recomputed["checkpoint_sha256"] != results["checkpoint_sha256"]
    assert recomputed["test_acc"] == pytest.approx(0.1, abs=0.02)  # zero weights: one class for every image


def test_a_damaged_checkpoint_or_summary_stops_with_exit_code_2(tmp_path):
    run = tmp_path / "run"
    assert run_train(run, "+experiment=dense", "setting=small", "trainer.max_steps_per_epoch=2").returncode == 0
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])  # truncated
    command = [sys.executable, "scripts/oneshot_prune.py", str(run), "--sparsities", "0.5"]
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.startswith("error: ") and str(checkpoint) in result.stderr
    (run / "summary.json").write_text("[1, 2]")
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "summary.json is a JSON list, not a run's summary" in result.stderr
    bad = launch.run([*command[:3], "--sparsities", "1.5"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "error: --sparsities 1.5 is not valid" in bad.stderr


@pytest.mark.slow
def test_a_batch_norm_network_is_evaluated_with_and_without_recalibrated_statistics(tmp_path):
    """cnn_small: each pruned model's accuracy as trained (the paper's protocol) and after its
    BatchNorm statistics were recalibrated on the training batches, each recomputed by hand."""
    import copy

    from omegaconf import OmegaConf

    from training.data import build_data
    from training.models import build_model

    run = tmp_path / "run"
    assert run_train(run, "+experiment=dense", "setting=small", "model=cnn_small").returncode == 0
    command = [sys.executable, "scripts/oneshot_prune.py", str(run), "--sparsities", "0.5", "0.9"]
    result = launch.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((run / "oneshot.json").read_text())
    assert results["batch_norm"] is True
    # the run's own length labels the columns, its differences to the setting's defaults (cnn_small, ...), which
    # every column shares, are said once above the table
    assert "SGD 10 ep" not in result.stdout and "dense SGD 1 ep (paper: 10 ep), BN recalibrated" in result.stdout
    assert re.search(r"Every column of ours: [^|]*model\.name=cnn_small", " ".join(result.stdout.split()))
    cfg = OmegaConf.create(json.loads((run / "summary.json").read_text())["config"])
    data = build_data(cfg.data, cfg.trainer.batch_size, 1000, cfg.trainer.seed)
    train_batches = [x for x, _ in data.train]  # 2048 images: 16 batches, fewer than the 100 recalibrated on
    model = build_model(cfg.model, data.in_channels, data.image_size, data.num_classes)

    def accuracy(m):
        m.eval()
        with torch.no_grad():
            return sum(int((m(x).argmax(1) == y).sum()) for x, y in data.test) / sum(len(y) for _, y in data.test)

    for target, entry in [(None, results), *((e["target"], e) for e in results["pruned"])]:
        state = read_checkpoint(run / "checkpoint.pt")["model"]
        model.load_state_dict(state if target is None else _prune_by_hand(state, target))
        assert entry["test_acc"] == pytest.approx(accuracy(model))
        statistics = _batch_norm_statistics_by_hand(copy.deepcopy(model), train_batches)
        for name, (mean, var) in statistics.items():
            bn = dict(model.named_modules())[name]
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
        assert entry["test_acc_bn_recalibrated"] == pytest.approx(accuracy(model), abs=2.5e-3)  # summation order: two test images of 1000
