"""Small models and configs for the sparse-method tests."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from ham import HAM
from training.methods import build_method
from training.config import SparsityConfig


def sparsity_cfg(**overrides):
    cfg = OmegaConf.structured(SparsityConfig)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4),
    )


def setup(method_name: str, steps_per_epoch: int = 10, epochs: int = 10, ham: bool = True, **cfg):
    model = small_model()
    method = build_method(sparsity_cfg(method=method_name, **cfg))
    method.prepare(model)
    groups = [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": 1e-2},
              {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.SGD(groups, lr=0.05, momentum=0.9)
    if ham:
        opt = HAM(opt, alpha=20.0, beta=1e-2)
    method.attach(opt, steps_per_epoch, epochs)
    return model, method, opt


def batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g)


def train_steps(model, method, opt, start: int, n: int):
    for step in range(start, start + n):
        x, y = batch(step)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        method.before_step(step)
        opt.step()
        method.after_step(step)
