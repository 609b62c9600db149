"""ERK/uniform densities and exact-count masks, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision

from sparse.distributions import erk_densities, keep_counts, uniform_densities
from sparse.masks import global_magnitude_masks, magnitude_mask, random_mask
from sparse.prunable import prunable_layers


def _erk_by_bisection(shapes, s):
    """ERK solved differently: bisection on ε of Σ min(1, ε·raw_l)·N_l = (1-s)·Σ N_l."""
    n = np.array([np.prod(x) for x in shapes], dtype=np.float64)
    raw = np.array([np.sum(x) / np.prod(x) for x in shapes], dtype=np.float64)
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.sum(np.minimum(1.0, mid * raw) * n) < (1 - s) * n.sum():
            lo = mid
        else:
            hi = mid
    return np.minimum(1.0, lo * raw)


def test_erk_for_resnet50_at_90_percent_matches_an_independent_solution():
    model = torchvision.models.resnet50()
    shapes = [tuple(m.weight.shape) for _, m in prunable_layers(model)]
    assert len(shapes) == 54  # 53 convolutions and the classifier
    dens = erk_densities(shapes, 0.9)
    np.testing.assert_allclose(dens, _erk_by_bisection(shapes, 0.9), rtol=1e-6, atol=1e-9)
    assert max(dens) == 1.0 and min(dens) > 0  # some small layers are dense, none empty
    counts = keep_counts(shapes, dens)
    total = sum(math.prod(s) for s in shapes)
    assert counts == [math.floor(d * math.prod(s) + 1e-9) for d, s in zip(dens, shapes)]
    # realised global sparsity: exact to the count, and within one weight per layer of the target
    assert abs((total - sum(counts)) - 0.9 * total) <= len(shapes)


def test_erk_makes_layers_dense_when_over_one_and_resolves():
    shapes = [(4, 1, 3, 3), (1000, 1000)]  # the small layer would exceed density 1
    dens = erk_densities(shapes, 0.5)
    assert dens[0] == 1.0
    n = [36, 1_000_000]
    assert dens[1] == pytest.approx((0.5 * sum(n) - 36) / 1_000_000)


def test_uniform_respects_dense_layers():
    assert uniform_densities([(2, 2), (3, 3), (4, 4)], 0.8, dense=[0]) == [1.0, pytest.approx(0.2), pytest.approx(0.2)]


def test_random_mask_has_exact_count_and_depends_on_the_seed():
    a = random_mask(torch.Size([10, 7]), 23, torch.Generator().manual_seed(0))
    b = random_mask(torch.Size([10, 7]), 23, torch.Generator().manual_seed(1))
    assert a.sum() == 23 and b.sum() == 23 and not torch.equal(a, b)


def test_magnitude_masks_keep_the_largest_entries():
    w = torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 0.05]])
    assert magnitude_mask(w, 2).tolist() == [[False, True, False], [True, False, False]]
    v = torch.tensor([3.0, -0.01, 0.5])
    masks = global_magnitude_masks([w, v], sparsity=0.5)  # 9 weights -> keep 4: 5, 3, 2, 0.5
    assert masks[0].tolist() == [[False, True, False], [True, False, False]]
    assert masks[1].tolist() == [True, False, True]
