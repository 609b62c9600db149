"""Each sparsity method against its rule (docs/methods.md §3), computed independently in the test."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils import parametrize

from sparse.distributions import erk_densities, keep_counts
from sparse.rigl import drop_and_grow
from sparse.schedules import acdc_phases, pilot_next_alpha, rigl_drop_fraction
from tests.sparse_helpers import setup, small_model, train_steps


def _theta(layer):
    return layer.theta()


def test_random_masks_have_exact_erk_counts():
    model, method, _ = setup("random", target=0.8)
    shapes = [l.shape for l in method.layers]
    expected = keep_counts(shapes, erk_densities(shapes, 0.8))
    assert [int(m.sum()) for m in method.masks] == expected
    assert [int((_theta(l) != 0).sum()) for l in method.layers] == expected


@pytest.mark.parametrize("method_name,extra", [("random", {}), ("rigl", {}), ("random", {"sign_in": True})])
def test_pruned_weights_stay_zero_through_sgd_momentum_weight_decay_and_ham(method_name, extra):
    model, method, opt = setup(method_name, target=0.7, rigl_delta_t=1000, rigl_t_end=0.001, **extra)  # no mask update
    pruned = [~m for m in method.masks]
    train_steps(model, method, opt, 0, 30)
    for layer, p in zip(method.layers, pruned):
        assert torch.equal(_theta(layer)[p], torch.zeros(int(p.sum())))
        for t in layer.trained:
            buf = opt.state[t]["momentum_buffer"]
            assert torch.equal(buf[p], torch.zeros(int(p.sum())))
    assert any((_theta(l)[~p] != 0).all() for l, p in zip(method.layers, pruned))


def test_acdc_timeline_for_100_epochs_is_the_recipe():
    phases = [(round(a, 6), round(b, 6), c) for a, b, c in acdc_phases(100)]
    expected = [(0, 10, False)]
    for i, start in enumerate(range(10, 75, 5)):
        expected.append((start, start + 5, i % 2 == 0))
    expected += [(75, 85, False), (85, 100, True)]
    assert phases == expected
    compressed = [a for a, b, c in phases if c]
    assert compressed == [10, 20, 30, 40, 50, 60, 70, 85]


def test_acdc_phase_boundaries_compress_to_target_and_decompress_from_zeros():
    steps_per_epoch, epochs = 5, 20  # 100 steps: phases every 5 steps after a 10-step warm-up
    model, method, opt = setup("acdc", steps_per_epoch, epochs, target=0.9)
    total = sum(l.w.numel() for l in method.layers)
    for step in range(100):
        before_zero = [(_theta(l) == 0) for l in method.layers]
        w_before = [l.w.detach().clone() for l in method.layers]
        train_steps(model, method, opt, step, 1)
        zeros = sum(int((_theta(l) == 0).sum()) for l in method.layers)
        compressed_now = any(m is not None for m in method.masks)
        phase = next(c for a, b, c in acdc_phases(100) if round(a) <= step < round(b))
        assert compressed_now == phase
        if phase:
            assert zeros >= math.floor(0.9 * total) - 1  # target sparsity (exact count, ties aside)
        if step in (15, 35, 75):  # first step of a decompressed phase: weights return from exactly 0
            returned = sum(int(((_theta(l) != 0) & z).sum()) for l, z in zip(method.layers, before_zero))
            assert returned > 0
            # the momentum was reset at the boundary: after this one step it is this step's
            # gradient plus weight decay alone (0.9·0 + g + wd·w), with no memory of the past
            for layer, w in zip(method.layers, w_before):
                torch.testing.assert_close(opt.state[layer.w]["momentum_buffer"], layer.w.grad + 1e-2 * w, rtol=1e-6, atol=1e-9)
            # ... for every parameter, biases included, as AC/DC's code resets them all (no decay on biases here)
            for bias in (p for p in model.parameters() if p.ndim == 1):
                torch.testing.assert_close(opt.state[bias]["momentum_buffer"], bias.grad, rtol=1e-6, atol=1e-9)
    assert sum(int((_theta(l) == 0).sum()) for l in method.layers) >= math.floor(0.9 * total) - 1


def test_rigl_drop_and_grow_rule_on_a_crafted_layer():
    theta = torch.tensor([0.5, -0.1, 0.0, 2.0, 0.0, -0.3, 0.0, 0.0])
    mask = theta != 0  # 4 active
    grad = torch.tensor([9.0, 9.0, 1.0, 9.0, 5.0, 9.0, 3.0, 0.5])
    new, swapped = drop_and_grow(theta, grad, mask, fraction=0.5)
    assert swapped == 2  # floor(0.5 · 4)
    # drop the two smallest active |θ|: -0.1 (idx 1) and -0.3 (idx 5); grow the two largest
    # inactive |grad| among idx {1, 2, 4, 5, 6, 7}: idx 1 and 5 (9.0, just dropped, may regrow)
    assert new.tolist() == [True, True, False, True, False, True, False, False]
    new, _ = drop_and_grow(theta, torch.tensor([0.0, 0.0, 1.0, 0.0, 5.0, 0.0, 3.0, 0.5]), mask, 0.5)
    assert new.tolist() == [True, False, False, True, True, False, True, False]


def test_rigl_update_preserves_counts_zeros_grown_and_stops_after_t_end():
    steps_per_epoch, epochs = 10, 4
    model, method, opt = setup("rigl", steps_per_epoch, epochs, target=0.8, rigl_delta_t=5, rigl_t_end=0.5)
    initial = [m.clone() for m in method.masks]
    train_steps(model, method, opt, 0, 1)
    assert not all(torch.equal(a, b) for a, b in zip(initial, method.masks)), "step 0 is an update (RiGL's code)"
    train_steps(model, method, opt, 1, 4)
    method.metrics()  # reads (and clears) the count of step 0's update
    counts = [int(m.sum()) for m in method.masks]
    old = [m.clone() for m in method.masks]
    # step 5 is an update: compute the expected swap count from the rule
    fraction = rigl_drop_fraction(5, 20, 0.3)
    x_step = 5
    train_steps(model, method, opt, x_step, 1)
    assert [int(m.sum()) for m in method.masks] == counts
    sizes = [l.w.numel() for l in method.layers]
    swaps = [math.floor(fraction * c) if c < n else 0 for c, n in zip(counts, sizes)]  # dense layers stay dense
    assert swaps[1] > 0 and swaps[0] == 0  # ERK keeps the small first conv dense at 80 %
    assert method.metrics()["rigl_regrown"] == sum(swaps)
    for new, o, k in zip(method.masks, old, swaps):
        newly = int((new & ~o).sum())
        assert newly == int((o & ~new).sum()) and 0 < newly <= k or k == 0 and newly == 0
    # no further update after T_end = 0.5 · 40 = 20 steps
    train_steps(model, method, opt, 6, 14)
    frozen = [m.clone() for m in method.masks]
    train_steps(model, method, opt, 20, 20)
    assert all(torch.equal(a, b) for a, b in zip(frozen, method.masks))


def test_rigl_grown_weights_and_momentum_start_at_zero_and_follow_the_gradient():
    model, method, opt = setup("rigl", 10, 4, ham=False, target=0.8, rigl_delta_t=5)
    train_steps(model, method, opt, 0, 5)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 4, (16,))
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    old = [m.clone() for m in method.masks]
    dense_grads = [l.w.grad.clone() for l in method.layers]
    method.before_step(5)  # the update, before the optimizer step
    for layer, o, n, g in zip(method.layers, old, method.masks, dense_grads):
        grown = n & ~o
        assert torch.equal(layer.w[grown], torch.zeros(int(grown.sum())))
        assert torch.equal(opt.state[layer.w]["momentum_buffer"][grown], torch.zeros(int(grown.sum())))
        # every grown entry has a gradient at least as large as every inactive one not grown
        not_grown = ~n
        if grown.any() and not_grown.any():
            assert g[grown].abs().min() >= g[not_grown].abs().max()


def test_str_forward_and_sparsity_grows_with_s():
    model, method, _ = setup("str", str_s_init=-5.0)
    layer = method.layers[1]
    w = layer.w.detach()
    s = method.thresholds[1]
    torch.testing.assert_close(layer.module.weight, torch.sign(w) * torch.relu(w.abs() - torch.sigmoid(s)))
    assert parametrize.is_parametrized(layer.module)
    sparsity = []
    for value in (-5.0, -3.0, -2.0, -1.0):
        with torch.no_grad():
            s.fill_(value)
        sparsity.append(float((layer.module.weight == 0).float().mean()))
    assert sparsity == sorted(sparsity) and sparsity[-1] > sparsity[0]
    assert method.decayed_parameters() == method.thresholds


def test_sign_in_reset_keeps_theta_and_restores_the_constraint():
    model, method, opt = setup("random", target=0.5, sign_in=True)
    train_steps(model, method, opt, 0, 20)
    before = [_theta(l).clone() for l in method.layers]
    drift = max(float((l.m * l.m - l.w * l.w - 1).abs().max().detach()) for l in method.layers)
    assert drift > 1e-4  # training moved (m, w) off the hyperbola
    method.sign_in_reset()
    for layer, theta in zip(method.layers, before):
        torch.testing.assert_close(_theta(layer), theta, rtol=2e-6, atol=1e-7)
        torch.testing.assert_close(layer.m * layer.m - layer.w * layer.w, torch.ones_like(theta), rtol=0, atol=2e-6)
    assert all(torch.equal(_theta(l)[~m], torch.zeros(int((~m).sum()))) for l, m in zip(method.layers, method.masks))


def test_pilot_schedule_follows_its_rule_on_a_scripted_sequence():
    # epochs = 10, δ = 2, K = 1.0: (acc improved?, l1) per epoch -> expected α
    script = [(True, 5.0), (True, 5.0), (False, 5.0), (True, 0.5), (True, 5.0), (True, 5.0)]
    alpha, got = 1.0, []
    for epoch, (improved, l1) in enumerate(script):
        alpha = pilot_next_alpha(alpha, improved, l1, 1.0, epoch, 10, 2.0)
        got.append(alpha)
    # grow, grow, shrink (no improvement), shrink (l1 < K), grow, shrink (epoch 5 is not < T/2)
    assert got == [2.0, 4.0, 2.0, 1.0, 2.0, 1.0]


def test_pilot_method_compares_with_the_previous_epoch_and_prunes_at_the_end():
    # 8 epochs, G = 16: δ = 16^(1/4) = 2 over the 4 epochs of the first half
    model, method, opt = setup("pilot", 2, 8, target=0.6, pilot_alpha=1e-3, pilot_alpha_growth=16.0, pilot_l1_floor=0.0)
    assert method.delta == pytest.approx(2.0)
    alphas = []
    for epoch, acc in enumerate([0.5, 0.3, 0.4, 0.45, 0.6, 0.7, 0.8, 0.9], start=1):
        train_steps(model, method, opt, 2 * (epoch - 1), 2)
        assert method.prunes_at(epoch) == (epoch == 8)
        method.end_epoch(epoch, acc)
        alphas.append(method.alpha / 1e-3)
    # grow (first epoch), shrink (0.3 < 0.5), grow (0.4 > 0.3 though below the best 0.5: the original
    # compares with the previous epoch), grow, then shrink in the second half
    assert alphas == pytest.approx([2, 1, 2, 4, 2, 1, 0.5, 0.25])
    thetas = [_theta(l) for l in method.layers]
    zeros = sum(int((t == 0).sum()) for t in thetas)
    total = sum(t.numel() for t in thetas)
    assert zeros == math.floor(0.6 * total) or zeros == total - int(0.4 * total + 1e-9)
    assert 0 < method.metrics()["pruned_mass_fraction"] < 0.6  # the smallest 60 % carry less than 60 % of the mass


@pytest.mark.parametrize("epochs", [10, 100, 7])
def test_pilot_alpha_reaches_the_same_multiple_whatever_the_run_length(epochs):
    model, method, opt = setup("pilot", 1, epochs, target=0.5, pilot_alpha=1e-3, pilot_alpha_growth=100.0, pilot_l1_floor=0.0)
    peak = 0.0
    for epoch in range(1, epochs + 1):
        method.end_epoch(epoch, epoch / (epochs + 1))  # the training accuracy always improves
        peak = max(peak, method.alpha / 1e-3)
    assert peak == pytest.approx(100.0)


def test_pilot_and_spred_penalty_is_the_only_decay_on_m_and_w():
    from tests.compose import compose_config
    from training.optim import build_optimizer

    for experiment in ("pilot", "spred"):
        cfg = compose_config([f"+experiment={experiment}", "setting=small"])
        assert cfg.optimizer.weight_decay == 5e-4
        model, method, _ = setup(experiment, pilot_alpha=1e-3, spred_weight_decay=1e-3)
        opt = build_optimizer(model, cfg, 0.1, method.decayed_parameters(), method.undecayed_parameters())
        decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
        trained = [p for layer in method.layers for p in layer.trained]
        assert len(trained) == 2 * len(method.layers) and all(decay[id(p)] == 0.0 for p in trained)
        biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
        assert biases and all(id(p) in decay for p in biases)


def test_spred_balanced_init_and_penalty_gradient():
    model, method, opt = setup("spred", spred_weight_decay=0.01, ham=False)
    layer = method.layers[0]
    torch.testing.assert_close(layer.m * layer.w, layer.module.weight)
    torch.testing.assert_close(layer.m, layer.w.abs())
    for p in layer.trained:
        p.grad = torch.zeros_like(p)
    method.before_step(0)
    torch.testing.assert_close(layer.w.grad, 0.02 * layer.w.detach())


@pytest.mark.parametrize("decay_on", [False, True])
def test_sign_in_m_and_w_get_the_base_weight_decay_only_when_asked(decay_on):
    """One SGD step with zero gradients: the base weight decay λ moves m to m·(1 − lr·λ) when it acts
    on m and w, and leaves them as they are when it does not (the default, results/signin_weight_decay.md)."""
    from tests.compose import compose_config
    from training.optim import build_optimizer

    overrides = ["+experiment=random_signin", "setting=small"] + ([f"sparsity.sign_in_weight_decay={str(decay_on).lower()}"] if decay_on else [])
    cfg = compose_config(overrides)
    assert cfg.sparsity.sign_in_weight_decay is decay_on
    model, method, _ = setup("random", sign_in=True, ham=False, sign_in_weight_decay=decay_on)
    opt = build_optimizer(model, cfg, 0.1, method.decayed_parameters(), method.undecayed_parameters())
    before = [(layer.m.detach().clone(), layer.w.detach().clone()) for layer in method.layers]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    shrink = 1 - 0.1 * 5e-4 if decay_on else 1.0
    for layer, (m, w) in zip(method.layers, before):
        torch.testing.assert_close(layer.m.detach(), m * shrink)
        torch.testing.assert_close(layer.w.detach(), w * shrink)


@pytest.mark.parametrize("constant", [0.01, 1.0, 3.0])
def test_pilot_starts_on_the_hyperbola_of_its_init_constant(constant):
    """m₀² − w₀² = c (sparsity.pilot_init_constant) and m₀ ⊙ w₀ = θ₀; the rate at which gradient flow
    moves θ is m² + w² = √(c² + 4θ²), c near zero."""
    reference = small_model()  # the same seed as setup's model: θ₀ before the reparameterization
    thetas = [m.weight.detach().clone() for m in reference if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    model, method, opt = setup("pilot", pilot_alpha=1e-3, pilot_init_constant=constant, ham=False)
    for layer, theta in zip(method.layers, thetas):
        m, w = layer.m.detach(), layer.w.detach()
        torch.testing.assert_close(m * w, theta)
        torch.testing.assert_close(m * m - w * w, torch.full_like(theta, constant), rtol=0, atol=5e-6 * max(1.0, constant))
        torch.testing.assert_close(m * m + w * w, torch.sqrt(constant**2 + 4 * theta * theta), rtol=1e-5, atol=1e-6)


def test_the_learning_rate_of_m_and_w_is_scaled_through_the_schedule():
    """sparsity.mirror_lr_scale: PILoT's and spred's m and w step with lr · scale at every step of a
    warm-up schedule; every other parameter with lr."""
    from tests.compose import compose_config
    from training.optim import build_optimizer
    from training.schedule import lr_multiplier

    cfg = compose_config(["+experiment=spred", "setting=small", "sparsity.mirror_lr_scale=0.25"])
    model, method, _ = setup("spred", spred_weight_decay=1e-3, ham=False)
    opt = build_optimizer(model, cfg, 0.1, method.decayed_parameters(), method.undecayed_parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_multiplier(cfg.schedule, 10, 5))
    trained = {id(p) for layer in method.layers for p in layer.trained}
    for step in range(7):
        lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
        base = 0.1 * lr_multiplier(cfg.schedule, 10, 5)(step)
        assert all(lr == pytest.approx(base * (0.25 if i in trained else 1.0)) for i, lr in lrs.items())
        opt.step()
        scheduler.step()
    plain = build_optimizer(model, compose_config(["+experiment=spred", "setting=small"]), 0.1, (), method.undecayed_parameters())
    assert all(g["lr"] == 0.1 for g in plain.param_groups)
