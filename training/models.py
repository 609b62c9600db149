"""Models by name (the ``model`` config group).

``lenet300_100`` and ``lenet5`` (LeCun et al.), ``cnn`` (a 32-64-channel CNN), ``cnn_small`` (the
small setting's BatchNorm network: 3 convolutions of 16-32-64 channels), CIFAR-style
``resnet20`` (He et al. 2016, 3 stages of 3 basic blocks, 16-32-64 channels) and ``resnet18``
(3x3 stem, no max-pool), torchvision's ``resnet50``, and any timm model (``model.name=timm
model.timm_name=...``). All are built for the data's channels, image size and classes.
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from omegaconf import DictConfig
from torch import nn


def lenet300_100(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * image_size * image_size, 300), nn.ReLU(),
        nn.Linear(300, 100), nn.ReLU(),
        nn.Linear(100, num_classes),
    )


def lenet5(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
    )
    side = ((image_size // 2) - 4) // 2
    return nn.Sequential(
        features, nn.Flatten(),
        nn.Linear(16 * side * side, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def cnn(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(in_channels, 32), *block(32, 32), nn.MaxPool2d(2),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def cnn_small(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """Three 3x3 convolutions (16, 32, 64 channels), each followed by BatchNorm and ReLU, a 2x2 max-pool
    after the first two, global average pooling and a linear classifier: 24,058 parameters (23,824 in
    prunable weights) for 1-channel 28-px inputs. The BatchNorm network of the small setting's one-shot
    and Sign-In experiments: about 50 ms a training step at batch 128 on one core, a fifth of ``cnn``'s."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(in_channels, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


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


def _cifar_resnet(blocks: list[int], widths: list[int]) -> Callable[..., nn.Module]:
    def build(in_channels: int, image_size: int, num_classes: int, width: int = 1) -> nn.Module:
        return CifarResNet(blocks, [w * width for w in widths], in_channels, num_classes)

    return build


def resnet50(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """torchvision's ResNet-50 (its stem takes ``in_channels``)."""
    import torchvision

    model = torchvision.models.resnet50(num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    return model


def timm_model(in_channels: int, image_size: int, num_classes: int, timm_name: str | None = None) -> nn.Module:
    """Any timm model by name, untrained."""
    import timm

    return timm.create_model(timm_name, pretrained=False, num_classes=num_classes, in_chans=in_channels)


#: The model registry: ``model.name`` -> builder ``(in_channels, image_size, num_classes, **its keys)``;
#: a builder's own keyword arguments are the model group's keys it reads (``width``, ``timm_name``).
MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet300_100": lenet300_100,
    "lenet5": lenet5,
    "cnn": cnn,
    "cnn_small": cnn_small,
    "resnet20": _cifar_resnet([3, 3, 3], [16, 32, 64]),
    "resnet18": _cifar_resnet([2, 2, 2, 2], [64, 128, 256, 512]),
    "resnet50": resnet50,
    "timm": timm_model,
}


def build_model(cfg: DictConfig, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """The model named by ``cfg.name`` (the ``model`` config group), with the group's keys its builder takes."""
    if cfg.name not in MODELS:
        raise ValueError(f"model.name={cfg.name!r} is not valid; allowed values: {', '.join(MODELS)}")
    builder = MODELS[cfg.name]
    own = [p for p in inspect.signature(builder).parameters if p not in ("in_channels", "image_size", "num_classes")]
    return builder(in_channels, image_size, num_classes, **{p: cfg[p] for p in own})
