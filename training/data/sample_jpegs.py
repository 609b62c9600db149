"""A small real JPEG data set built from Fashion-MNIST, for the image-loader tests and benchmarks:
the images upscaled to 64 px, coloured (R = x, G = 0.7·x, B = 255 − x, so that a swapped channel order shows), saved as JPEG
files in an ImageFolder tree ``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.data.tensors import read_fashion_mnist

CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
SIDE = 64


def coloured(gray28: np.ndarray) -> np.ndarray:
    g = np.asarray(Image.fromarray(gray28).resize((SIDE, SIDE), Image.BILINEAR), dtype=np.float32)
    return np.stack([g, 0.7 * g, 255 - g], axis=-1).round().astype(np.uint8)


def make_jpeg_tree(root: Path, n_train: int, n_val: int) -> Path:
    splits = read_fashion_mnist(None)
    for split, fm_split, n in (("train", "train", n_train), ("val", "test", n_val)):
        x, y = (array[:n] for array in splits[fm_split])
        for name in CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(x, y)):
            Image.fromarray(coloured(image)).save(root / split / CLASSES[label] / f"{split}_{i:05d}.JPEG", quality=95)
    return root
