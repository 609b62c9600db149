from __future__ import annotations

import torch

from ham import SignFlips, density


def test_sign_flips_counts_a_crafted_sequence():
    a = torch.tensor([1.0, -2.0, 0.0, 3.0, -1.0])
    b = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    flips = SignFlips([("a", a), ("b", b)])
    a.copy_(torch.tensor([-1.0, -2.0, 1.0, 0.0, 2.0]))  # flips: idx0 (+→-), idx4 (-→+); 0→+ and +→0 are not
    b.copy_(torch.tensor([[-0.5, 0.5], [0.5, 0.5]]))     # 1 flip
    counts = flips.update()
    assert counts.tolist() == [2, 1]
    a.copy_(torch.tensor([1.0, -2.0, -1.0, 5.0, 2.0]))   # idx0 (-→+), idx2 (+→-); idx3 was 0 → not a flip
    flips.update()
    assert flips.read() == {"a": 4, "b": 1, "total": 5}
    assert flips.read() == {"a": 0, "b": 0, "total": 0}  # reset after reading


def test_density_per_tensor_and_global():
    x = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    y = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 7.0])
    d = density([("x", x), ("y", y)])
    assert d == {"x": 0.5, "y": 1 / 6, "global": 3 / 10}
