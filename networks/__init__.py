"""The repository's own networks, as plain ``torch.nn`` modules (depends only on torch; ``resnet50``
also needs torchvision). Installed as ``ham_sparse.networks``, so that a model exported by the trainer
(``model.json``'s ``constructor``) can be built without this checkout.

Every constructor takes ``(in_channels, image_size, num_classes)``; the CIFAR-style ResNets also a
``width`` multiplier. :func:`load_exported` loads an exported model (``model.json`` and
``model.safetensors``) from an allow-list of constructors, importing nothing the file names.
"""

from .exported import load_exported
from .resnet import BasicBlock, CifarResNet, resnet18, resnet20, resnet50
from .small import cnn, cnn_small, lenet5, lenet300_100

__all__ = ["BasicBlock", "CifarResNet", "cnn", "cnn_small", "lenet300_100", "lenet5", "load_exported", "resnet18", "resnet20",
           "resnet50"]
