"""HAM through timm's optimizer factory, with timm's scheduler and loss scaler."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before timm: its hub lookups would wait on the network
import timm  # noqa: E402
from timm.scheduler import CosineLRScheduler  # noqa: E402
from timm.utils import NativeScaler  # noqa: E402

from ham import HAM  # noqa: E402
from ham.timm_optim import register_timm_optimizers  # noqa: E402

X = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(1))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.LayerNorm(16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def _train(model, optimizer, epochs: int = 4, steps: int = 3) -> None:
    """timm's training pattern: NativeScaler does backward and step, CosineLRScheduler sets the rate per epoch."""
    scheduler = CosineLRScheduler(optimizer, t_initial=epochs, warmup_t=1, warmup_lr_init=1e-3)
    scaler = NativeScaler(device="cpu")
    for epoch in range(epochs):
        scheduler.step(epoch)
        for _ in range(steps):
            optimizer.zero_grad()
            scaler(F.cross_entropy(model(X), Y), optimizer)


def test_create_optimizer_v2_builds_ham_over_timms_optimizer_and_trains_as_one_built_by_hand():
    assert {"hamsgd", "hamadamw"} <= set(register_timm_optimizers())
    register_timm_optimizers()  # again: harmless
    model = _model()
    optimizer = timm.optim.create_optimizer_v2(model, opt="hamsgd", lr=0.1, weight_decay=1e-3, ham_alpha=20.0, ham_beta=1e-2)
    assert isinstance(optimizer, HAM) and isinstance(optimizer.base_optimizer, torch.optim.SGD)
    assert (optimizer.alpha, optimizer.beta) == (20.0, 1e-2)
    assert optimizer.param_groups[0]["nesterov"] is True  # timm's sgd defaults, kept
    # by hand: timm's own sgd with the same arguments, wrapped in HAM
    reference_model = _model()
    reference = HAM(timm.optim.create_optimizer_v2(reference_model, opt="sgd", lr=0.1, weight_decay=1e-3), alpha=20.0, beta=1e-2)
    _train(model, optimizer)
    _train(reference_model, reference)
    assert optimizer.param_groups[0]["lr"] == reference.param_groups[0]["lr"] != 0.1  # the scheduler drove it
    for a, b in zip(model.parameters(), reference_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), _model().parameters()))  # it trained


def test_an_adamw_variant_takes_betas_and_eps():
    register_timm_optimizers(["adamw"])
    optimizer = timm.optim.create_optimizer_v2(_model(), opt="hamadamw", lr=1e-3, betas=(0.8, 0.9), eps=1e-6, ham_alpha=5.0)
    assert isinstance(optimizer.base_optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["betas"] == (0.8, 0.9)
    assert optimizer.alpha == 5.0


def test_a_bad_ham_argument_names_itself():
    register_timm_optimizers(["sgd"])
    with pytest.raises(ValueError, match=r"alpha=-1\.0 is not valid"):
        timm.optim.create_optimizer_v2(_model(), opt="hamsgd", lr=0.1, ham_alpha=-1.0)
