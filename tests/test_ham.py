"""HAM's hyperbolic step against the plain numpy reference in tests/reference.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ham import HAM
from tests.reference import SgdRef, hyperbolic_ref


class Frozen(torch.optim.Optimizer):
    """A base optimizer whose step changes nothing, to look at the hyperbolic step alone."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):
        return None


def _weights(seed: int, shape=(6, 5)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    w.view(-1)[::4] = 0.0  # exact zeros
    return w


def test_multi_step_sgd_momentum_wd_groups_scheduler_matches_reference():
    torch.manual_seed(0)
    a = torch.nn.Parameter(_weights(1))
    b = torch.nn.Parameter(_weights(2, (4, 3, 2, 2)))
    bias = torch.nn.Parameter(torch.randn(5))
    off = torch.nn.Parameter(_weights(3, (3, 3)))
    groups = [
        {"params": [a, bias], "lr": 0.1},
        {"params": [b], "lr": 0.05, "ham_alpha": 30.0, "ham_beta": 0.2},
        {"params": [off], "lr": 0.1, "ham_enabled": False},
    ]
    sgd = torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=1e-2)
    opt = HAM(sgd, alpha=10.0, beta=0.05, clamp=5.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / (1 + k))
    params = [a, bias, b, off]
    lrs = [0.1, 0.1, 0.05, 0.1]
    alphas = [10.0, None, 30.0, None]  # None: HAM does not act (bias, disabled group)
    betas = [0.05, None, 0.2, None]
    ref_w = [p.detach().double().numpy().copy() for p in params]
    ref_sgd = SgdRef(momentum=0.9, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(5)
    clamp_bound = False
    for k in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        if k == 2:
            grads[0].view(-1)[1] = 20.0  # lr·α·g = (0.1/3)·10·20 > 5: the clamp binds
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        sched.step()
        for i, (p, g) in enumerate(zip(params, grads)):
            lr = lrs[i] / (1 + k)
            ref_w[i] = ref_sgd.step(i, ref_w[i], g.double().numpy(), lr)
            if alphas[i] is not None:
                if np.abs(lr * alphas[i] * g.double().numpy()).max() > 5:
                    clamp_bound = True
                ref_w[i] = hyperbolic_ref(ref_w[i], g.double().numpy(), lr, alphas[i], betas[i])
            np.testing.assert_allclose(p.detach().double().numpy(), ref_w[i], rtol=2e-5, atol=1e-6)
    assert clamp_bound
    # Scheduler drove the shared groups: the base optimizer sees the decayed lr.
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.1 / 6)


def test_non_finite_gradient_is_not_spread_and_zeros_stay_zero():
    w = _weights(4)
    p = torch.nn.Parameter(w.clone())
    g = torch.randn(w.shape)
    g[0, 1], g[1, 2], g[2, 3] = float("nan"), float("inf"), -float("inf")
    g[0, 0] = float("nan")  # at an exact zero weight
    p.grad = g.clone()
    opt = HAM(Frozen([p], lr=0.1), alpha=20.0, beta=0.1)
    opt.step()
    expected = hyperbolic_ref(w.numpy(), g.numpy(), 0.1, 20.0, 0.1)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6, atol=0)
    assert p[0, 1] == w[0, 1] and p[1, 2] == w[1, 2] and p[2, 3] == w[2, 3]
    assert torch.equal(p.detach() == 0, w == 0)  # zeros stay zero, nothing else becomes zero
    assert torch.isfinite(p).all()


def test_non_finite_weight_stays_as_it_was():
    w = _weights(5)
    w[1, 1], w[2, 2] = float("inf"), float("nan")
    p = torch.nn.Parameter(w.clone())
    p.grad = torch.randn(w.shape)
    HAM(Frozen([p], lr=0.1), alpha=5.0, beta=0.1).step()
    assert p[1, 1] == float("inf") and torch.isnan(p[2, 2])
    assert torch.isfinite(p.view(-1)[torch.isfinite(w.view(-1))]).all()


def test_alpha_beta_zero_gives_exactly_the_base_trajectory():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    twin.load_state_dict(model.state_dict())
    opt = HAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3), alpha=0.0, beta=0.0)
    base = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    for _ in range(10):
        for m, o in ((model, opt), (twin, base)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)


def test_zero_gradient_multiplies_by_exp_minus_lr_beta():
    w = _weights(6)
    p = torch.nn.Parameter(w.clone())
    p.grad = torch.zeros_like(w)
    HAM(torch.optim.SGD([p], lr=0.3), alpha=100.0, beta=0.7).step()
    torch.testing.assert_close(p.detach(), w * math.exp(-0.3 * 0.7), rtol=1e-6, atol=0)


def test_bias_and_norm_parameters_are_untouched():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Linear(6, 2))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Linear(6, 2))
    twin.load_state_dict(model.state_dict())
    opt = HAM(torch.optim.SGD(model.parameters(), lr=0.1), alpha=50.0, beta=0.5)
    base = torch.optim.SGD(twin.parameters(), lr=0.1)
    x = torch.randn(16, 4)
    for m, o in ((model, opt), (twin, base)):
        m(x).square().mean().backward()
        o.step()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        if p.ndim >= 2:
            assert not torch.equal(p, q), name
        else:
            assert torch.equal(p, q), name


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_chunked_path_and_memory_layouts_match_reference(layout):
    w = _weights(7, (5, 3, 4, 4))
    g = torch.randn(w.shape)
    if layout == "channels_last":
        w = w.contiguous(memory_format=torch.channels_last)
        g = g.contiguous(memory_format=torch.channels_last)
    p = torch.nn.Parameter(w.clone())
    p.grad = g.clone()
    opt = HAM(Frozen([p], lr=0.2), alpha=3.0, beta=0.1)
    opt.cpu_chunk_size = 7  # many chunks, ragged last one
    opt.step()
    expected = hyperbolic_ref(w.numpy(), g.numpy(), 0.2, 3.0, 0.1)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6, atol=0)


def test_sign_pre_uses_the_sign_before_the_base_step():
    w = torch.tensor([[0.05, -0.05, 1.0, -1.0]])
    g = torch.tensor([[1.0, -1.0, 0.5, -0.5]])
    p = torch.nn.Parameter(w.clone())
    p.grad = g.clone()
    opt = HAM(torch.optim.SGD([p], lr=0.1), alpha=2.0, beta=0.0, sign="pre")
    opt.step()
    half = w.numpy() - 0.1 * g.numpy()  # the first two entries change sign in the base step
    expected = hyperbolic_ref(half, g.numpy(), 0.1, 2.0, 0.0, sign_source=w.numpy())
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6)
    post = hyperbolic_ref(half, g.numpy(), 0.1, 2.0, 0.0)
    assert not np.allclose(expected, post)


def test_max_weight_norm_rescales_only_finite_norms_over_the_limit():
    big = torch.nn.Parameter(torch.full((10, 10), 20.0))  # norm 200
    small = torch.nn.Parameter(torch.full((2, 2), 1.0))
    broken = torch.nn.Parameter(torch.full((3, 3), 50.0))
    broken.data[0, 0] = float("inf")
    for p in (big, small, broken):
        p.grad = torch.zeros_like(p)
    HAM(Frozen([big, small, broken], lr=0.1), alpha=1.0, beta=0.0, max_weight_norm=100.0).step()
    assert torch.linalg.vector_norm(big).item() == pytest.approx(100.0, rel=1e-6)
    assert torch.equal(small.detach(), torch.ones(2, 2))
    assert broken[1, 1].item() == 50.0  # an infinite norm does not zero the whole tensor


@pytest.mark.parametrize("pre", [False, True], ids=["sign_post", "sign_pre"])
def test_accelerator_flat_step_matches_reference_with_mixed_layouts_and_non_finite_gradients(pre):
    # the path HAM takes on a GPU, run here on the CPU: one flat buffer per group, no host sync
    from ham.ham import LOG2E, _flat_step

    w1, w2 = _weights(10), _weights(11, (4, 3, 2, 2)).contiguous(memory_format=torch.channels_last)
    g1, g2 = torch.randn(w1.shape), torch.randn(w2.shape).contiguous(memory_format=torch.channels_last)
    g1[1, 1], g2[0, 0, 0, 0] = float("nan"), float("inf")
    s1, s2 = (torch.sign(-w1), torch.sign(w2)) if pre else (None, None)
    p1, p2 = w1.clone(), w2.clone()
    lr, alpha, beta, clamp = 0.1, 30.0, 0.3, 5.0
    _flat_step([p1, p2], [g1, g2], None if not pre else [s1, s2], -lr * alpha * LOG2E, torch.tensor(-lr * beta * LOG2E),
               clamp * LOG2E)
    for p, w, g, s in ((p1, w1, g1, s1), (p2, w2, g2, s2)):
        source = None if s is None else -w.numpy() if s is s1 else w.numpy()
        expected = hyperbolic_ref(w.numpy(), g.numpy(), lr, alpha, beta, sign_source=source)
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-6, atol=0)
    assert p2.is_contiguous(memory_format=torch.channels_last)


def test_fused_compiled_step_matches_reference():
    w1, w2 = _weights(8), _weights(9, (3, 2, 3, 3))
    g1, g2 = torch.randn(w1.shape), torch.randn(w2.shape)
    g1[0, 2] = float("nan")
    p1, p2 = torch.nn.Parameter(w1.clone()), torch.nn.Parameter(w2.clone())
    p1.grad, p2.grad = g1.clone(), g2.clone()
    opt = HAM(Frozen([p1, p2], lr=0.1), alpha=30.0, beta=0.3, fused=True)
    opt.step()
    for p, w, g in ((p1, w1, g1), (p2, w2, g2)):
        expected = hyperbolic_ref(w.numpy(), g.numpy(), 0.1, 30.0, 0.3)
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6, atol=0)
    # a changed learning rate is an input, not a constant baked into the kernel
    opt.param_groups[0]["lr"] = 0.02
    w1 = p1.detach().clone()
    opt.step()
    expected = hyperbolic_ref(w1.numpy(), g1.numpy(), 0.02, 30.0, 0.3)
    np.testing.assert_allclose(p1.detach().numpy(), expected, rtol=1e-6, atol=0)


def test_add_param_group_gets_the_base_defaults_and_ham_acts_on_it():
    p = torch.nn.Parameter(torch.ones(2, 2))
    q = torch.nn.Parameter(torch.ones(2, 2))
    opt = HAM(torch.optim.SGD([p], lr=0.1, momentum=0.5), alpha=1.0, beta=1.0)
    opt.add_param_group({"params": [q]})
    assert opt.base_optimizer.param_groups[1]["momentum"] == 0.5
    q.grad = torch.zeros_like(q)
    opt.step()
    torch.testing.assert_close(q.detach(), torch.full((2, 2), math.exp(-0.1)))


def test_bad_arguments_are_rejected():
    p = torch.nn.Parameter(torch.ones(2, 2))
    with pytest.raises(ValueError, match="sign"):
        HAM(torch.optim.SGD([p], lr=0.1), sign="after")
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        HAM([p])  # type: ignore[arg-type]


def test_sign_pre_with_a_closure_that_creates_the_gradients():
    w = torch.tensor([[0.05, -0.05, 1.0, -1.0]])
    target = torch.tensor([[1.0, -1.0, 0.5, -0.5]])  # gradient of ½‖p - (w - target)‖² at w is target
    p = torch.nn.Parameter(w.clone())
    opt = HAM(torch.optim.SGD([p], lr=0.1), alpha=2.0, beta=0.0, sign="pre")

    def closure():
        opt.zero_grad()  # no gradient exists when step() records the signs
        loss = 0.5 * (p - (w - target)).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    half = w.numpy() - 0.1 * target.numpy()
    expected = hyperbolic_ref(half, target.numpy(), 0.1, 2.0, 0.0, sign_source=w.numpy())
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6)
