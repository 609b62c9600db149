"""ResNets: CIFAR-style ``resnet20`` (He et al. 2016: 3 stages of 3 basic blocks, 16-32-64
channels) and ``resnet18`` (3x3 stem, no max-pool), and torchvision's ``resnet50`` with a stem for
any number of input channels."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """3x3 stem, stages of basic blocks, global average pool, linear classifier."""

    def __init__(self, blocks: list[int], widths: list[int], in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, (n, width) in enumerate(zip(blocks, widths)):
            for j in range(n):
                layers.append(BasicBlock(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def resnet20(in_channels: int, image_size: int, num_classes: int, width: int = 1) -> nn.Module:
    return CifarResNet([3, 3, 3], [16 * width, 32 * width, 64 * width], in_channels, num_classes)


def resnet18(in_channels: int, image_size: int, num_classes: int, width: int = 1) -> nn.Module:
    return CifarResNet([2, 2, 2, 2], [64 * width, 128 * width, 256 * width, 512 * width], in_channels, num_classes)


def resnet50(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """torchvision's ResNet-50, its stem taking ``in_channels`` (for 3 channels exactly
    ``torchvision.models.resnet50(num_classes=num_classes)``)."""
    import torchvision

    model = torchvision.models.resnet50(num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    return model
