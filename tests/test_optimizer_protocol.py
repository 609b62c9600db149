"""HAM and SAM behave like torch.optim optimizers: copy, pickle, repr, state dicts, hooks,
param groups, zero_grad and torch.compile, each checked against the wrapped optimizer (or an
uncopied twin) doing the same thing."""

from __future__ import annotations

import copy
import io
import pickle
import re

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

from ham import HAM, SAM

X = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(1))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _stack(kind: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    if kind == "ham":
        return HAM(base, alpha=30.0, beta=0.01)
    if kind == "sam":
        return SAM(base, rho=0.1)
    return HAM(SAM(base, rho=0.1), alpha=30.0, beta=0.01)


def _update(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    """One update from the gradients in ``.grad`` (SAM: its two steps, with the perturbed point's)."""
    if isinstance(opt, SAM) or isinstance(getattr(opt, "base_optimizer", None), SAM):
        opt.first_step(zero_grad=True)
        F.cross_entropy(model(X), Y).backward()
        opt.second_step(zero_grad=True)
    else:
        opt.step()
        opt.zero_grad()


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int) -> None:
    for _ in range(steps):
        F.cross_entropy(model(X), Y).backward()
        _update(model, opt)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _assert_same_continuation(model, opt, model2, opt2, steps: int) -> None:
    """Both stacks train ``steps`` more steps and end with bit-identical weights."""
    _train(model, opt, steps)
    _train(model2, opt2, steps)
    for a, b in zip(_weights(model), _weights(model2)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


KINDS = ["ham", "sam", "ham_over_sam"]


def _pickled(obj):
    return pickle.loads(pickle.dumps(obj))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("copier", [copy.deepcopy, _pickled], ids=["deepcopy", "pickle"])
def test_a_copy_continues_exactly_like_the_original(kind, copier):
    model = _model()
    opt = _stack(kind, model)
    _train(model, opt, 2)  # momentum buffers exist
    model2, opt2 = copier((model, opt))  # copied together, as a checkpointing framework would
    assert opt2.param_groups is opt2.base_optimizer.param_groups and opt2.state is opt2.base_optimizer.state
    assert all(p2 is not p for p2, p in zip(opt2.param_groups[0]["params"], model.parameters()))
    assert opt2.param_groups[0]["params"][0] is next(model2.parameters())  # the copy drives the copied model
    assert opt2.settings() == opt.settings()
    _assert_same_continuation(model, opt, model2, opt2, 3)


def test_hooks_are_dropped_by_pickle_as_torch_optim_does():
    model = _model()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    ham = HAM(torch.optim.SGD(model.parameters(), lr=0.1))
    for opt in (base, ham):
        opt.register_step_post_hook(print)
    assert len(_pickled(base)._optimizer_step_post_hooks) == len(_pickled(ham)._optimizer_step_post_hooks) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trips_through_torch_save_with_weights_only(kind):
    model = _model()
    opt = _stack(kind, model)
    _train(model, opt, 2)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    model2 = copy.deepcopy(model)
    opt2 = _stack(kind, model2)
    for group in opt2.param_groups:
        group["lr"] = 123.0  # overwritten by the load
    if isinstance(opt2, HAM):  # a setting that differs, to see the load restore it
        opt2.alpha = 1.0
    else:
        opt2.rho = 9.0
    opt2.load_state_dict(saved)
    assert opt2.settings() == opt.settings()
    _assert_same_continuation(model, opt, model2, opt2, 2)


def test_repr_shows_the_wrapped_optimizer_and_the_settings():
    model = _model()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    text = repr(HAM(SAM(base, rho=0.2), alpha=7.0))
    assert text.startswith("HAM(SAM(" + repr(base))
    assert "rho=0.2" in text and "alpha=7.0" in text and "beta=0.001" in text


@pytest.mark.parametrize("kind", KINDS)
def test_step_and_state_dict_hooks_fire_as_on_the_base_optimizer(kind):
    """The same hooks registered on a plain SGD and on the wrapper see the same calls."""
    calls: dict[str, list[str]] = {"base": [], "wrapper": []}

    def register(opt, log):
        opt.register_step_pre_hook(lambda o, args, kwargs: log.append("step_pre"))
        opt.register_step_post_hook(lambda o, args, kwargs: log.append("step_post"))
        opt.register_state_dict_pre_hook(lambda o: log.append("sd_pre"))
        opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
        opt.register_load_state_dict_pre_hook(lambda o, sd: log.append("load_pre"))
        opt.register_load_state_dict_post_hook(lambda o: log.append("load_post"))

    model = _model()
    plain = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapper = _stack(kind, _model())
    register(plain, calls["base"])
    register(wrapper, calls["wrapper"])
    for opt in (plain, wrapper):
        owner = model if opt is plain else None
        params = list(owner.parameters()) if owner else [p for g in opt.param_groups for p in g["params"]]
        for p in params:
            p.grad = torch.ones_like(p)
        if opt is wrapper and "sam" in kind:
            opt.step(lambda: None)  # SAM's step needs a closure (here one that computes nothing)
        else:
            opt.step()
        state = opt.state_dict()
        assert state["extra"] == 1
        opt.load_state_dict(state)
    assert calls["wrapper"] == calls["base"] == ["step_pre", "step_post", "sd_pre", "load_pre", "load_post"]


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_as_the_base_optimizer(set_to_none):
    model = _model()
    opt = HAM(SAM(torch.optim.SGD(model.parameters(), lr=0.1)))
    F.cross_entropy(model(X), Y).backward()
    opt.zero_grad(set_to_none=set_to_none)
    for p in model.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad is not None and not p.grad.any()


def test_add_param_group_reaches_every_layer_of_the_stack():
    model = _model()
    extra = torch.nn.Parameter(torch.ones(3, 3))
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    sam = SAM(base)
    ham = HAM(sam)
    ham.add_param_group({"params": [extra], "lr": 0.01})
    for opt in (ham, sam, base):
        assert opt.param_groups[-1]["params"] == [extra]
        assert opt.param_groups[-1]["lr"] == 0.01 and opt.param_groups[-1]["momentum"] == 0.5
    with pytest.raises(ValueError, match="more than one parameter group"):  # torch's own check
        ham.add_param_group({"params": [extra]})


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_a_compiled_training_step_matches_eager(backend):
    torch._dynamo.reset()

    def run(compiled: bool) -> list[torch.Tensor]:
        model = _model()
        opt = _stack("ham", model)

        def step():
            loss = F.cross_entropy(model(X), Y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        fn = torch.compile(step, backend=backend) if compiled else step
        for _ in range(4):
            fn()
        return _weights(model)

    for a, b in zip(run(True), run(False)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_hyperbolic_step_compiles_to_one_graph_without_breaks():
    """Under torch.compile the CPU path's per-tensor chunking and its host-side norm check would
    break the graph (and recompile per tensor shape); compiled, HAM takes the flat path."""
    torch._dynamo.reset()
    model = _model()
    opt = HAM(torch.optim.SGD(model.parameters(), lr=0.1))
    F.cross_entropy(model(X), Y).backward()
    explanation = torch._dynamo.explain(opt.hyperbolic_step)()
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons


SCHEDULERS = {  # the kinds the README and the docs use
    "step": lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5),
    "cosine": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
    "one_cycle": lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=20),
}


def _train_scheduled(model, opt, scheduler, steps: int) -> None:
    for _ in range(steps):
        _train(model, opt, 1)
        scheduler.step()


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("copier", [copy.deepcopy, _pickled], ids=["deepcopy", "pickle"])
def test_a_copy_with_a_scheduler_attached_behaves_as_a_torch_optimizers(kind, copier, scheduler):
    """The scheduler patches ``step`` on the instance it is built on; a torch optimizer's copy
    leaves the patch out (checked on SGD beside it), and so does ours. Copied together with its
    scheduler (as a checkpointing framework copies them), the copy continues exactly like the original."""
    reference = torch.optim.SGD(_model().parameters(), lr=0.1)
    SCHEDULERS[scheduler](reference)
    model = _model()
    opt = _stack(kind, model)
    schedule = SCHEDULERS[scheduler](opt)
    _train_scheduled(model, opt, schedule, 3)
    model2, opt2, schedule2 = copier((model, opt, schedule))
    assert ("step" in vars(copier(reference))) is ("step" in vars(opt2)) is False
    assert hasattr(opt.step, "_wrapped_by_lr_sched")  # the original keeps its scheduler
    assert schedule2.optimizer is opt2
    _train_scheduled(model, opt, schedule, 4)
    _train_scheduled(model2, opt2, schedule2, 4)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] != 0.1
    for a, b in zip(_weights(model), _weights(model2)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _tensor_lr_stack(kind: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    base = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.1), momentum=0.9, weight_decay=1e-3)
    return HAM(base, alpha=30.0, beta=0.01) if kind == "ham" else HAM(SAM(base, rho=0.1), alpha=30.0, beta=0.01)


@pytest.mark.parametrize("kind", ["ham", "ham_over_sam"])
def test_a_compiled_step_under_a_scheduler_compiles_once_with_a_tensor_learning_rate(kind):
    """PyTorch's recipe for a compiled step under an LR scheduler: a tensor learning rate. The
    schedule changes it every step; after the first two steps (which compile, as for plain SGD:
    its momentum buffers appear in the first) 22 more steps compile nothing, and the weights are
    those of the same steps run eagerly. (Reading the rate with .item() broke the graph there and
    recompiled HAM's per-tensor path once per shape, until the compiler gave up.)"""
    graphs = []

    def counting(gm, example_inputs):  # a backend that counts the graphs Dynamo hands it
        graphs.append(gm)
        return gm.forward

    def run(compiled: bool) -> list[torch.Tensor]:
        torch._dynamo.reset()
        counters.clear()
        model = _model()
        opt = _tensor_lr_stack(kind, model)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + 0.3 * step))
        update = torch.compile(_update, backend=counting) if compiled else _update
        for step in range(24):
            F.cross_entropy(model(X), Y).backward()
            update(model, opt)
            schedule.step()
            if step == 1:
                after_warm_up = len(graphs)
        if compiled:
            assert len(graphs) == after_warm_up, f"{len(graphs) - after_warm_up} graphs compiled after the first two steps"
            # no frame fell back to eager (a graph break inside HAM's loop over the groups did)
            assert counters["frames"]["ok"] == counters["frames"]["total"] and not counters["unimplemented"], dict(counters["unimplemented"])
        assert float(opt.param_groups[0]["lr"]) < 0.02  # the schedule did change it
        return _weights(model)

    for a, b in zip(run(True), run(False)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_ham_over_ham_is_refused_in_one_sentence():
    model = _model()
    for inner in (HAM(torch.optim.SGD(model.parameters(), lr=0.1)), SAM(HAM(torch.optim.SGD(model.parameters(), lr=0.1)))):
        with pytest.raises(ValueError, match="already applies HAM .*would run twice per step"):
            HAM(inner)
    HAM(SAM(torch.optim.SGD(model.parameters(), lr=0.1)))  # HAM over SAM stays what it is



def _saved_ham_state():
    model = torch.nn.Linear(3, 2)
    opt = HAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), alpha=20.0)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt.state_dict()


@pytest.mark.parametrize("damage,message", [
    (lambda d: d["state"][0].__setitem__("momentum_buffer", torch.zeros(5)),
     "the state 'momentum_buffer' of parameter 0 has shape (5,), but that parameter has shape (2, 3)"),
    (lambda d: d["ham"].__setitem__("alpha", "abc"), "alpha='abc' is not valid: it must be a number"),
    (lambda d: d["ham"].__setitem__("alpha", float("inf")), "alpha=inf is not valid: it must be a finite number"),
    (lambda d: d["state"][0].__setitem__("momentum_buffer", "abc"),
     "the state 'momentum_buffer' of parameter 0 is str 'abc', not a tensor or a number"),
    (lambda d: d["state"].__setitem__(0, "abc"), "the state of parameter 0 is str, not the mapping"),
    (lambda d: d["ham"].__setitem__("alpha", -50.0), "alpha=-50.0 is not valid: it must be >= 0"),
    (lambda d: d["ham"].__setitem__("step", 5), "its 'ham' entry has unknown keys step"),
    (lambda d: d["ham"].pop("beta"), "its 'ham' entry lacks beta"),
    (lambda d: d.__setitem__("ham", [1]), "its 'ham' entry is list, not the mapping"),
], ids=["buffer-shape", "alpha-text", "alpha-infinite", "buffer-text", "state-text", "alpha-negative", "unknown-key", "missing-key",
        "not-a-mapping"])
def test_ham_refuses_at_load_what_it_could_not_step_with_and_keeps_its_own_state(damage, message):
    model, saved = _saved_ham_state()
    damaged = copy.deepcopy(saved)
    damage(damaged)
    fresh = HAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), alpha=7.0)
    with pytest.raises(ValueError, match=re.escape(message)):
        fresh.load_state_dict(damaged)
    assert fresh.alpha == 7.0 and fresh.state == {}  # nothing half-loaded
    fresh.load_state_dict(saved)  # the undamaged one loads
    assert fresh.alpha == 20.0 and torch.equal(fresh.state[model.weight]["momentum_buffer"], saved["state"][0]["momentum_buffer"])


def test_sam_refuses_a_flag_that_is_not_a_bool_and_both_refuse_non_numbers_at_construction():
    model = torch.nn.Linear(3, 2)
    saved = SAM(torch.optim.SGD(model.parameters(), lr=0.1)).state_dict()
    saved["sam"]["adaptive"] = "yes"
    with pytest.raises(ValueError, match=re.escape("SAM.load_state_dict: adaptive='yes' is not valid: it must be true or false")):
        SAM(torch.optim.SGD(model.parameters(), lr=0.1)).load_state_dict(saved)
    for make, bad in ((lambda **k: HAM(torch.optim.SGD(model.parameters(), lr=0.1), **k), {"alpha": "abc"}),
                      (lambda **k: HAM(torch.optim.SGD(model.parameters(), lr=0.1), **k), {"beta": True}),
                      (lambda **k: SAM(torch.optim.SGD(model.parameters(), lr=0.1), **k), {"rho": "0.05"})):
        with pytest.raises(ValueError, match="is not valid: it must be a number"):
            make(**bad)
    with pytest.raises(ValueError, match=re.escape("alpha=-50 is not valid: it must be >= 0")):
        HAM(torch.optim.SGD(model.parameters(), lr=0.1), alpha=-50)
    for bad in ({"alpha": float("inf")}, {"beta": float("nan")}, {"clamp": float("inf")}, {"max_weight_norm": float("inf")}):
        with pytest.raises(ValueError, match="is not valid: it must be a finite number"):
            HAM(torch.optim.SGD(model.parameters(), lr=0.1), **bad)
    with pytest.raises(ValueError, match=re.escape("rho=inf is not valid: it must be a finite number")):
        SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=float("inf"))
