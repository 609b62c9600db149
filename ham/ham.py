r"""Hyperbolic Aware Minimization (HAM) as an add-on to any ``torch.optim.Optimizer``.

For every selected weight tensor, after the wrapped optimizer's step (paper, Algorithm 1, HYP*):

.. math::

    \theta_{k+1/2} = \mathrm{OptimizerStep}(\nabla f(\theta_k), \eta_k)

    \theta_{k+1} = \theta_{k+1/2} \odot \exp\big(\mathrm{clamp}(-\eta_k(\alpha\,
        \mathrm{sign}(\theta_{k+1/2}) \odot \nabla f(\theta_k) + \beta), -c, c)\big)

with :math:`\eta_k` the current learning rate of the parameter's group, :math:`\nabla f(\theta_k)`
the raw gradient in ``.grad`` (no momentum, no weight decay), and :math:`c` = ``clamp``.
``sign="pre"`` uses :math:`\mathrm{sign}(\theta_k)` instead (the GD;HYP variant).

Properties kept exactly:

* exact zeros stay zero (a pruned weight is never revived);
* an entry whose gradient is not finite is left as the base step left it (factor 1), and a
  non-finite weight stays what it was, so nothing non-finite spreads; no host synchronisation;
* with ``max_weight_norm`` set, a tensor whose L2 norm exceeds it is rescaled to that norm (a
  tensor with a non-finite norm is not rescaled);
* HAM keeps no per-parameter state of its own.

The exponential is evaluated as ``exp2`` of the exponent times :math:`\log_2 e`, which is the
same function and, on CPUs, about twice as fast as ``exp`` in PyTorch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

import torch

from .wrapper import OptimizerWrapper, require_numbers

LOG2E = math.log2(math.e)
ParamFilter = Callable[[torch.Tensor], bool]


def default_param_filter(param: torch.Tensor) -> bool:
    """HAM acts on weight matrices and conv kernels (``ndim >= 2``), not on biases or norms."""
    return param.ndim >= 2


#: where the sign in ``sign(w)`` is read: after the base step (the paper's) or before it
SIGNS = ("post", "pre")


class HAM(OptimizerWrapper):
    """Wrap ``optimizer`` so that each ``step()`` is followed by the hyperbolic step.

    Args:
        optimizer: an instantiated optimizer (SGD, AdamW, :class:`ham.SAM`, ...).
        alpha: :math:`\\alpha`, the strength of the hyperbolic geometry (ImageNet: 200).
        beta: :math:`\\beta`, a decoupled, lr-scaled decay towards zero (ImageNet: 1e-3).
        clamp: the exponent is clamped to ``[-clamp, clamp]`` before ``exp``.
        max_weight_norm: rescale a selected tensor whose L2 norm exceeds this; ``None`` disables.
        sign: ``"post"`` (HYP*, sign after the base step) or ``"pre"`` (GD;HYP, sign before).
        param_filter: which tensors HAM acts on; default ``ndim >= 2``.
        fused: run the hyperbolic step as one ``torch.compile``-generated kernel per group.

    A param group may carry ``ham_alpha`` and ``ham_beta`` (overriding ``alpha``/``beta``) and
    ``ham_enabled=False`` (HAM leaves the group alone).
    """

    state_key = "ham"
    scratch = ("_workspace",)
    #: On the CPU the step runs over chunks of this many elements through one reused buffer, so
    #: the temporaries stay in cache and no memory is allocated per step.
    cpu_chunk_size = 1 << 20

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        alpha: float = 200.0,
        beta: float = 1e-3,
        clamp: float = 5.0,
        max_weight_norm: float | None = 1000.0,
        sign: Literal["post", "pre"] = "post",
        param_filter: ParamFilter | None = None,
        fused: bool = False,
    ) -> None:
        self.check_arguments(alpha=alpha, beta=beta, clamp=clamp, max_weight_norm=max_weight_norm, sign=sign)
        inner = optimizer
        while isinstance(inner, OptimizerWrapper):
            if isinstance(inner, HAM):
                raise ValueError(f"HAM wraps an optimizer that already applies HAM ({type(optimizer).__name__}): the hyperbolic step "
                                 f"would run twice per step; wrap the base optimizer once, HAM(optimizer, alpha=..., beta=...)")
            inner = inner.base_optimizer
        super().__init__(optimizer)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.clamp = float(clamp)
        self.max_weight_norm = None if max_weight_norm is None else float(max_weight_norm)
        self.sign = sign
        self.param_filter = param_filter or default_param_filter
        self.fused = fused
        self._reset_scratch()

    @staticmethod
    def check_arguments(alpha: float = 200.0, beta: float = 1e-3, clamp: float = 5.0, max_weight_norm: float | None = 1000.0,
                        sign: str = "post") -> None:
        """Refuse settings HAM cannot run with: a :class:`ValueError` that opens with ``argument=value``
        (the constructor calls this; a config layer may call it first and name its own key)."""
        if sign not in SIGNS:
            raise ValueError(f"sign={sign!r} is not valid; allowed values: {', '.join(SIGNS)}")
        require_numbers(alpha=alpha, beta=beta, clamp=clamp, max_weight_norm=max_weight_norm)
        rules = [(alpha >= 0, "alpha", alpha, ">= 0 (alpha=0 turns the hyperbolic geometry off)"), (beta >= 0, "beta", beta, ">= 0"),
                 (clamp > 0, "clamp", clamp, "> 0"), (max_weight_norm is None or max_weight_norm > 0, "max_weight_norm", max_weight_norm, "> 0 or None")]
        for holds, name, value, rule in rules:
            if not holds:
                raise ValueError(f"{name}={value!r} is not valid: it must be {rule}")

    def _reset_scratch(self) -> None:
        self._workspace: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def settings(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "clamp": self.clamp,
            "max_weight_norm": self.max_weight_norm,
            "sign": self.sign,
        }

    # -- the algorithm ------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Base optimizer step (evaluating ``closure`` if given), then the hyperbolic step."""
        signs = self._signs_before_step()
        loss = self.base_optimizer.step(closure)
        self.hyperbolic_step(signs)
        return loss

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """SAM's first step (ascent to the perturbed point), when wrapping :class:`ham.SAM`."""
        self.base_optimizer.first_step(zero_grad=zero_grad)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """SAM's second step (restore, base step with the perturbed-point gradient), then HYP."""
        self.base_optimizer.unperturb()
        signs = self._signs_before_step()
        self.base_optimizer.second_step(zero_grad=False)
        self.hyperbolic_step(signs)
        self._note_step()
        if zero_grad:
            self.zero_grad()

    def _selected(self, group: dict[str, Any], with_grad: bool = True) -> list[torch.Tensor]:
        if not group.get("ham_enabled", True):
            return []
        return [p for p in group["params"] if (p.grad is not None or not with_grad) and self.param_filter(p)]

    def _signs_before_step(self) -> dict[torch.Tensor, torch.Tensor] | None:
        """``sign(θ_k)`` of every tensor HAM may act on (a closure may create gradients later)."""
        if self.sign != "pre":
            return None
        return {p: torch.sign(p) for g in self.param_groups for p in self._selected(g, with_grad=False)}

    @torch.no_grad()
    def hyperbolic_step(self, signs: dict[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Apply HYP* to the selected tensors using the gradients currently in ``.grad``.

        ``signs`` (per parameter, as :meth:`step` records for ``sign="pre"``) replaces
        ``sign(θ)`` when given.
        """
        for group in self.param_groups:
            params = self._selected(group)
            if not params:
                continue
            alpha = float(group.get("ham_alpha", self.alpha))
            beta = float(group.get("ham_beta", self.beta))
            # Exponent in base 2: e2 = log2(e)·(-lr·α·sign·g - lr·β), clamped to log2(e)·[-c, c].
            coef, bias_t = _exponent_scalars(group["lr"], alpha, beta, params[0])
            bound = self.clamp * LOG2E
            grads = [p.grad for p in params]
            group_signs = None if signs is None else [signs[p] for p in params]
            if self.fused:
                _fused_step(params, grads, group_signs, coef, bias_t, bound)
            elif params[0].device.type != "cpu" or torch.compiler.is_compiling():
                # an accelerator: a few kernels per group, no host sync; under torch.compile one
                # graph per group (not one per tensor shape), which the compiler fuses
                _flat_step(params, grads, group_signs, coef, bias_t, bound)
            else:
                for i, (p, g) in enumerate(zip(params, grads)):
                    s = None if group_signs is None else group_signs[i]
                    self._tensor_step(p, g, s, coef, bias_t, bound)
            if self.max_weight_norm is not None:
                _limit_norms(params, self.max_weight_norm)

    def _tensor_step(
        self,
        p: torch.Tensor,
        g: torch.Tensor,
        s: torch.Tensor | None,
        coef: float,
        bias: torch.Tensor,
        bound: float,
    ) -> None:
        pieces = _aligned_flat_views(p, g, s)
        if pieces is None or p.device.type != "cpu":
            _hyperbolic_inplace(p, g, s, torch.empty_like(p), coef, bias, bound)
            return
        flat_p, flat_g, flat_s = pieces
        chunk = self.cpu_chunk_size
        buffer = self._buffer(p)
        for start in range(0, flat_p.numel(), chunk):
            part = slice(start, start + chunk)
            pc = flat_p[part]
            _hyperbolic_inplace(
                pc,
                flat_g[part],
                None if flat_s is None else flat_s[part],
                buffer[: pc.numel()],
                coef,
                bias,
                bound,
            )

    def _buffer(self, p: torch.Tensor) -> torch.Tensor:
        key = (p.device, p.dtype)
        if key not in self._workspace:
            self._workspace[key] = torch.empty(self.cpu_chunk_size, device=p.device, dtype=p.dtype)
        return self._workspace[key]


def _exponent_scalars(lr: float | torch.Tensor, alpha: float, beta: float, like: torch.Tensor) -> tuple[float | torch.Tensor, torch.Tensor]:
    """``coef = -lr·α·log2(e)`` and ``bias = -lr·β·log2(e)``, the bias a 0-dim tensor on ``like``'s
    device and dtype. A tensor learning rate (PyTorch's recipe for a compiled step under an LR
    scheduler, ``SGD(params, lr=torch.tensor(0.05))``) stays a tensor under the compiler and on an
    accelerator: no ``.item()``, so no graph break, no recompilation per value and no host sync. A
    float learning rate that changes recompiles a compiled step, as it does torch's optimizers: the
    compiler guards on the value it reads from the param group."""
    if isinstance(lr, torch.Tensor) and (torch.compiler.is_compiling() or lr.device.type != "cpu"):
        lr = lr.to(device=like.device, dtype=like.dtype)
        return lr * (-alpha * LOG2E), lr * (-beta * LOG2E)
    lr = float(lr)
    return -lr * alpha * LOG2E, torch.full((), -lr * beta * LOG2E, dtype=like.dtype, device=like.device)


def _hyperbolic_inplace(
    p: torch.Tensor,
    g: torch.Tensor,
    s: torch.Tensor | None,
    e: torch.Tensor,
    coef: float,
    bias: torch.Tensor,
    bound: float,
) -> None:
    """``p *= factor`` (:func:`_factor`) with ``e`` as scratch."""
    p.mul_(_factor(p, g, s, coef, bias, bound, out=e))


def _factor(
    p: torch.Tensor,
    g: torch.Tensor,
    s: torch.Tensor | None,
    coef: float | torch.Tensor,
    bias: torch.Tensor,
    bound: float,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """HAM's factor, the one place it is written (every path — chunked CPU, per tensor, flat,
    compiled — calls this): ``exp2(clamp(coef·sign·g + bias, ±bound))`` with ``sign = s`` or
    ``sign(p)``; 1 where the exponent is not finite (a non-finite gradient), so nothing non-finite
    spreads. ``coef`` is a number or a 0-dim tensor (the compiled kernel's, so that a new learning
    rate is not a new graph); ``out`` is scratch of ``p``'s shape, else the factor is allocated."""
    sign = torch.sign(p, out=out) if s is None else s
    if isinstance(coef, torch.Tensor):
        e = sign * g * coef + bias
    else:  # the same, in one pass
        e = torch.addcmul(bias, sign, g, value=coef, out=out)
    return _zero_where_not_finite_(e).clamp_(-bound, bound).exp2_()


def _zero_where_not_finite_(e: torch.Tensor) -> torch.Tensor:
    """The non-finite rule: an exponent that is not finite becomes 0 (factor 1), in place. Eager,
    ``nan_to_num_`` (3x faster than a masked fill on the CPU); compiled, ``torch.where`` on
    ``isfinite`` (Inductor's kernel is 1.6x faster than for ``nan_to_num``)."""
    if torch.compiler.is_compiling():
        return e.copy_(torch.where(torch.isfinite(e), e, 0.0))
    return e.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


def _flat_step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    signs: list[torch.Tensor] | None,
    coef: float | torch.Tensor,
    bias: torch.Tensor,
    bound: float,
) -> None:
    """The hyperbolic step of a whole group on one flat buffer: the tensors are concatenated (in
    their logical order, so any memory layout works), the exponent is computed with one kernel per
    operation, and one multi-tensor multiply applies it; no value is read back to the host."""
    flat_p = torch.cat([p.reshape(-1) for p in params])
    flat_g = torch.cat([g.reshape(-1) for g in grads])
    flat_s = None if signs is None else torch.cat([s.reshape(-1) for s in signs])
    e = _factor(flat_p, flat_g, flat_s, coef, bias, bound)
    factors = [f.view(p.shape) for f, p in zip(e.split([p.numel() for p in params]), params)]
    torch._foreach_mul_(params, factors)


def _aligned_flat_views(
    p: torch.Tensor, g: torch.Tensor, s: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
    """1-D views of ``p``, ``g`` (and ``s``) in memory order, or None if they cannot be aligned."""
    tensors = [p, g] if s is None else [p, g, s]
    if any(t.stride() != p.stride() or not _dense(t) for t in tensors):
        return None
    flat = [t.as_strided((t.numel(),), (1,)) for t in tensors]
    return flat[0], flat[1], (flat[2] if s is not None else None)


def _dense(t: torch.Tensor) -> bool:
    """Non-overlapping and dense (contiguous in *some* dimension order, e.g. channels_last)."""
    return t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)


def _limit_norms(params: list[torch.Tensor], max_norm: float) -> None:
    """Rescale each tensor whose (finite) L2 norm exceeds ``max_norm`` to norm ``max_norm``."""
    norms = torch.stack(torch._foreach_norm(params))
    over = torch.isfinite(norms) & (norms > max_norm)
    # On the CPU reading a flag costs nothing; on an accelerator it would be a host sync, so
    # there (and under torch.compile) we always multiply (by exactly 1.0 where nothing is over).
    if params[0].device.type == "cpu" and not torch.compiler.is_compiling() and not bool(over.any()):
        return
    factors = torch.where(over, max_norm / norms, torch.ones_like(norms))
    for p, factor in zip(params, factors.unbind()):
        p.mul_(factor)


def _fused_kernel(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    signs: list[torch.Tensor] | None,
    coefs: torch.Tensor,
    bound: float,
) -> None:
    for i, (p, g) in enumerate(zip(params, grads)):
        p.mul_(_factor(p, g, None if signs is None else signs[i], coefs[0], coefs[1], bound))


_compiled_kernel: Callable[..., None] | None = None


def _fused_step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    signs: list[torch.Tensor] | None,
    coef: float | torch.Tensor,
    bias: torch.Tensor,
    bound: float,
) -> None:
    """The hyperbolic step as one compiled kernel; lr-dependent scalars are passed as a tensor
    so that a changing learning rate does not trigger recompilation."""
    global _compiled_kernel
    if _compiled_kernel is None:
        _compiled_kernel = torch.compile(_fused_kernel, dynamic=False)
    coefs = torch.stack([coef if isinstance(coef, torch.Tensor) else torch.full_like(bias, coef), bias])
    _compiled_kernel(params, grads, signs, coefs, bound)
