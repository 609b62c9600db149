"""Checkpoint round trips and GradScaler interplay of the wrappers."""

from __future__ import annotations

import io

import pytest
import torch

from ham import HAM, SAM


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5),
    )


def _make(model, use_sam):
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True)
    base = SAM(sgd, rho=0.05) if use_sam else sgd
    opt = HAM(base, alpha=20.0, beta=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12)
    return opt, sched


def _train(model, opt, sched, batches):
    for x, y in batches:
        def closure():
            torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.zero_grad()
        closure()
        if isinstance(opt.base_optimizer, SAM):
            opt.step(closure)
        else:
            opt.step()
        sched.step()


@pytest.mark.parametrize("use_sam", [False, True])
def test_state_dict_round_trip_continues_bit_for_bit(use_sam):
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.randn(8, 1, 8, 8, generator=gen), torch.randint(0, 5, (8,), generator=gen)) for _ in range(10)]
    model = _model()
    opt, sched = _make(model, use_sam)
    _train(model, opt, sched, batches)
    reference = [p.detach().clone() for p in model.parameters()]

    model = _model()
    opt, sched = _make(model, use_sam)
    _train(model, opt, sched, batches[:4])
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    assert saved["opt"]["ham"]["alpha"] == 20.0
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)  # a fresh model that differs from the saved one
    opt, sched = _make(model, use_sam)
    opt.alpha = 1.0  # must be restored from the checkpoint
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    assert opt.alpha == 20.0
    assert opt.param_groups is opt.base_optimizer.param_groups
    _train(model, opt, sched, batches[4:])
    for p, q in zip(model.parameters(), reference):
        assert torch.equal(p.detach(), q)


def test_load_state_dict_from_a_plain_optimizer_is_rejected():
    p = torch.nn.Parameter(torch.ones(2, 2))
    plain = torch.optim.SGD([p], lr=0.1).state_dict()
    with pytest.raises(KeyError, match="ham"):
        HAM(torch.optim.SGD([p], lr=0.1)).load_state_dict(plain)


def _scaled_run(scale, poison=False):
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    opt = HAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), alpha=20.0, beta=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale, enabled=scale != 1.0)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    if poison:
        model.weight.grad[0, 0] = float("inf")
    scaler.step(opt)
    scaler.update()
    return model, scaler


def test_grad_scaler_hyperbolic_step_sees_unscaled_gradients():
    plain, _ = _scaled_run(1.0)
    scaled, _ = _scaled_run(2.0**12)
    for p, q in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_grad_scaler_skipped_step_skips_the_hyperbolic_step():
    torch.manual_seed(0)
    before = torch.nn.Linear(6, 3).weight.detach().clone()
    model, scaler = _scaled_run(2.0**12, poison=True)
    assert torch.equal(model.weight.detach(), before)
    assert scaler.get_scale() < 2.0**12
