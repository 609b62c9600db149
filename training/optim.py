"""Build the optimizer stack of a run: base (SGD/AdamW) -> SAM (optional) -> HAM (optional)."""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

import torch
from omegaconf import DictConfig

from ham import HAM, SAM, default_param_filter


def _sgd(groups: list[dict], lr: float, cfg: DictConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)


def _adamw(groups: list[dict], lr: float, cfg: DictConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas))


#: The base optimizers (``optimizer.name``, and ``optimizer.sam_base`` under SAM): name -> builder
#: ``(param_groups, lr, optimizer group's config)``.
BASE_OPTIMIZERS: dict[str, Callable[[list[dict], float, DictConfig], torch.optim.Optimizer]] = {"sgd": _sgd, "adamw": _adamw}
#: every ``optimizer.name``: a base optimizer, or ``sam`` around ``optimizer.sam_base``
OPTIMIZERS = (*BASE_OPTIMIZERS, "sam")


def peak_lr(cfg: DictConfig, global_batch: int) -> float:
    """The one place where the learning rate is scaled with the batch size:
    ``lr * global_batch / lr_reference_batch`` when ``optimizer.lr_reference_batch`` is set."""
    if cfg.lr_reference_batch is not None:
        return cfg.lr * global_batch / cfg.lr_reference_batch
    return cfg.lr


def weight_decay(opt_cfg: DictConfig, sparsity_cfg: DictConfig) -> float:
    """The base weight decay: STR's recipe puts one value (``sparsity.str_weight_decay``, from the
    setting's preset for the target unless set) on the weights and the thresholds, and that is how
    STR's sparsity is steered."""
    if sparsity_cfg.method == "str":
        if sparsity_cfg.str_weight_decay is None:
            raise ValueError("sparsity.str_weight_decay is null: training.presets.apply_preset fills it from the presets")
        return sparsity_cfg.str_weight_decay
    return opt_cfg.weight_decay


def param_groups(
    model: torch.nn.Module,
    wd: float,
    opt_cfg: DictConfig,
    ham_cfg: DictConfig,
    decayed: Sequence[torch.Tensor] = (),
    undecayed: Sequence[torch.Tensor] = (),
    undecayed_lr: float | None = None,
) -> list[dict]:
    """Weights (ndim >= 2), the rest (biases, norms), ``decayed`` extras (e.g. STR's thresholds,
    which get the weights' decay ``wd`` but not HAM) and ``undecayed`` weights (PILoT's and spred's
    m and w, whose only decay is the method's penalty), each with its weight decay; the
    ``undecayed`` group's learning rate is ``undecayed_lr`` when given (else the optimizer's)."""
    extra = {id(p) for p in decayed} | {id(p) for p in undecayed}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in extra]
    weights = [p for p in params if default_param_filter(p)]
    others = [p for p in params if not default_param_filter(p)]
    weights_decay = 0.0 if ham_cfg.enabled and not ham_cfg.keep_weight_decay else wd  # else HAM's beta alone
    groups = [{"params": weights, "weight_decay": weights_decay}]
    if undecayed:
        groups.append({"params": list(undecayed), "weight_decay": 0.0, **({} if undecayed_lr is None else {"lr": undecayed_lr})})
    if others:
        groups.append({"params": others, "weight_decay": wd if opt_cfg.decay_bn_and_bias else 0.0})
    if decayed:
        groups.append({"params": list(decayed), "weight_decay": wd, "ham_enabled": False})
    return groups


def build_optimizer(
    model: torch.nn.Module,
    cfg: DictConfig,
    lr: float,
    decayed: Sequence[torch.Tensor] = (),
    undecayed: Sequence[torch.Tensor] = (),
) -> torch.optim.Optimizer:
    """The optimizer stack for ``cfg`` (the whole run config: optimizer, ham, sparsity)."""
    opt_cfg, ham_cfg = cfg.optimizer, cfg.ham
    scale = float(cfg.sparsity.get("mirror_lr_scale", 1.0))  # PILoT's and spred's m and w (validate allows no other method)
    groups = param_groups(model, weight_decay(opt_cfg, cfg.sparsity), opt_cfg, ham_cfg, decayed, undecayed,
                          None if scale == 1 else lr * scale)
    base_name = opt_cfg.sam_base if opt_cfg.name == "sam" else opt_cfg.name
    if base_name not in BASE_OPTIMIZERS:
        raise ValueError(f"optimizer.name={base_name!r} is not valid; allowed values: {', '.join(OPTIMIZERS)}")
    opt = BASE_OPTIMIZERS[base_name](groups, lr, opt_cfg)
    if opt_cfg.name == "sam":
        opt = SAM(opt, rho=opt_cfg.rho, adaptive=opt_cfg.adaptive)
    if ham_cfg.enabled:
        opt = HAM(opt, **ham_arguments(ham_cfg), fused=ham_cfg.fused)
    return opt


def ham_arguments(ham_cfg: DictConfig) -> dict:
    """HAM's settings from the ``ham`` group: the keys named as :meth:`ham.HAM.check_arguments`'s arguments."""
    return {name: ham_cfg[name] for name in inspect.signature(HAM.check_arguments).parameters}


def uses_sam(optimizer: torch.optim.Optimizer) -> bool:
    while True:
        if isinstance(optimizer, SAM):
            return True
        if not hasattr(optimizer, "base_optimizer"):
            return False
        optimizer = optimizer.base_optimizer
