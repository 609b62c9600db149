"""SAM (and HAM over SAM) on a quadratic, against hand-written two-pass updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ham import HAM, SAM
from tests.reference import hyperbolic_ref

A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, -0.3], [0.0, -0.3, 1.0]])
B = np.array([1.0, -2.0, 0.5])
W0 = np.array([[0.4, -0.7, 1.2]])


def grad_ref(w):
    """∇ of f(w) = ½ wᵀAw - bᵀw."""
    return A @ w - B


def loss_fn(p):
    a, b = torch.tensor(A, dtype=torch.float64), torch.tensor(B, dtype=torch.float64)
    w = p.view(-1)
    return 0.5 * w @ a @ w - b @ w


def _param():
    return torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("api", ["two_step", "closure"])
def test_sam_step_equals_hand_computed_update(adaptive, api):
    rho, lr = 0.3, 0.1
    w = W0.ravel()
    g = grad_ref(w)
    if adaptive:
        e = rho * w**2 * g / np.linalg.norm(np.abs(w) * g)
    else:
        e = rho * g / np.linalg.norm(g)
    expected = w - lr * grad_ref(w + e)

    p = _param()
    sam = SAM(torch.optim.SGD([p], lr=lr), rho=rho, adaptive=adaptive)
    loss_fn(p).backward()
    if api == "two_step":
        sam.first_step(zero_grad=True)
        np.testing.assert_allclose(p.detach().numpy().ravel(), w + e, rtol=1e-12)
        loss_fn(p).backward()
        sam.second_step(zero_grad=True)
    else:
        sam.step(lambda: loss_fn(p).backward())
    np.testing.assert_allclose(p.detach().numpy().ravel(), expected, rtol=1e-12)


@pytest.mark.parametrize("api", ["two_step", "closure"])
def test_ham_over_sam_uses_the_second_pass_gradient(api):
    rho, lr, alpha, beta = 0.3, 0.1, 4.0, 0.2
    w = W0.ravel()
    g = grad_ref(w)
    g2 = grad_ref(w + rho * g / np.linalg.norm(g))
    half = w - lr * g2
    expected = hyperbolic_ref(half, g2, lr, alpha, beta)
    first_pass = hyperbolic_ref(half, g, lr, alpha, beta)
    assert not np.allclose(expected, first_pass)

    p = _param()
    opt = HAM(SAM(torch.optim.SGD([p], lr=lr), rho=rho), alpha=alpha, beta=beta, param_filter=lambda t: True)
    loss_fn(p).backward()
    if api == "two_step":
        opt.first_step(zero_grad=True)
        loss_fn(p).backward()
        opt.second_step(zero_grad=True)
        assert p.grad is None
    else:
        opt.step(lambda: loss_fn(p).backward())
    np.testing.assert_allclose(p.detach().numpy().ravel(), expected, rtol=1e-12)


def test_sam_restores_weights_bit_exactly_and_shares_groups():
    p = torch.nn.Parameter(torch.randn(5, 5))
    sgd = torch.optim.SGD([p], lr=0.0)
    sam = SAM(sgd, rho=0.5)
    assert sam.param_groups is sgd.param_groups
    before = p.detach().clone()
    p.grad = torch.randn(5, 5)
    sam.first_step()
    assert not torch.equal(p.detach(), before)
    sam.second_step()
    assert torch.equal(p.detach(), before)


def test_sam_step_without_closure_is_an_error():
    p = torch.nn.Parameter(torch.randn(2))
    with pytest.raises(ValueError, match="closure"):
        SAM(torch.optim.SGD([p], lr=0.1)).step()
