"""Small data sets in memory (Fashion-MNIST, synthetic), served as tensors by :class:`TensorLoader`
without per-image decoding. The loader shards its data over the data-parallel ranks and draws its
order from ``(seed, epoch)``, so an epoch's batches do not depend on what ran before it (which makes
resuming exact).
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from omegaconf import DictConfig

from training.data.base import DataBundle, DataError, InputSpec, digest

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: the label names of Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; the data set's README), by label
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class TensorLoader:
    """Batches of in-memory tensors, shuffled per epoch and sharded over ranks.

    The training order of epoch ``e`` is ``randperm(n, seed=(seed, e))``; each rank takes every
    ``world``-th index of it (dropping the ragged tail so that all ranks run the same number of
    steps). Evaluation (``shuffle=False``) keeps every example exactly once over the ranks.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _indices(self) -> torch.Tensor:
        n = len(self.x)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=gen)
            order = order[: n - n % self.world_size]
        else:
            order = torch.arange(n)
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        n = len(self._indices())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = self._indices()
        start, self.start_batch = self.start_batch, 0
        for b in range(start, len(self)):
            idx = indices[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


@functools.lru_cache(maxsize=len(FASHION_MNIST_FILES) * 2)
def _gunzip(compressed: bytes) -> bytes:
    """``compressed`` decompressed, remembered by content (the key is the compressed bytes, compared
    in full): a process that trains several times (a multirun with Hydra's basic launcher) reads each
    file every time but decompresses it once."""
    return gzip.decompress(compressed)


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not; a damaged file is named, with how to get
    it again."""
    again = ("get it again (Debian: sudo apt-get install --reinstall dataset-fashion-mnist; or the original "
             "file from the Fashion-MNIST release) and put it in place of this one")
    if not path.is_file():  # a FIFO would block the read, a device never end it
        raise DataError(f"{path} is not a regular file (a FIFO, a socket or a device): the IDX data must be a file; {again}")
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = _gunzip(data)
    except (OSError, EOFError, zlib.error) as error:  # not gzip, a truncated gzip stream, a CRC error
        raise DataError(f"{path} cannot be read ({type(error).__name__}: {error}): {again}") from None
    if len(data) < 4:
        raise DataError(f"{path} is {'empty' if not data else f'{len(data)} bytes long'}, not an IDX file: {again}")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is not an unsigned-byte IDX file: {again}")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    array = np.frombuffer(bytearray(data), dtype=np.uint8, offset=4 + 4 * ndim)  # writable: torch.from_numpy takes it as is
    if array.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {array.size}: {again}")
    return array.reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / name, directory / "raw" / name, directory / "FashionMNIST" / "raw" / name):
            if candidate.exists():
                return candidate
    return None


def fashion_mnist_dir(root: str | None) -> Path:
    """Where the Fashion-MNIST IDX files are: ``data.root`` if set (and only there), else the Debian
    package's directory, else a torchvision download into ``./data``; otherwise a
    :class:`DataError` saying how to provide them."""
    def complete(directory: Path) -> bool:
        return all(_find_idx(directory, stem) for pair in FASHION_MNIST_FILES.values() for stem in pair)

    if root:  # the user named a place: use it or say so, never silently another one
        if complete(Path(root).expanduser()):
            return Path(root).expanduser()
        raise DataError(_missing_message([f"data.root={root}"]))
    if complete(DEBIAN_FASHION_MNIST):
        return DEBIAN_FASHION_MNIST
    tried = [str(DEBIAN_FASHION_MNIST)]
    download_dir = Path("data").resolve()
    try:
        import torchvision

        torchvision.datasets.FashionMNIST(str(download_dir), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(download_dir), train=False, download=True)
        return download_dir / "FashionMNIST" / "raw"
    except Exception as error:  # no network, or the server refused
        tried.append(f"torchvision download into {download_dir} ({type(error).__name__}: {error})")
    raise DataError(_missing_message(tried))


def _missing_message(tried: list[str]) -> str:
    return (
        "Fashion-MNIST not found. Looked in: " + "; ".join(tried) + ".\n"
        "Provide it in one of these ways:\n"
        "  * sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu; files in /usr/share/datasets/fashion-mnist)\n"
        "  * put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and\n"
        "    t10k-labels-idx1-ubyte.gz in a directory and pass data.root=/that/directory\n"
        "  * run once with internet access so that torchvision can download it into ./data"
    )


def array_identity(array: np.ndarray | torch.Tensor) -> str:
    """An array's shape, dtype and a digest of its values: ``"60000x28x28 uint8, sha256 ..."``."""
    values = array.numpy() if isinstance(array, torch.Tensor) else array
    shape = "x".join(map(str, values.shape))
    return f"{shape} {values.dtype}, sha256 {digest([shape, str(values.dtype), np.ascontiguousarray(values).tobytes()])}"


def pixel_statistics(images: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of the pixels ``p = uint8 / 255``, exact in
    float64 from the histogram of the 256 values (no float copy of the images)."""
    counts = torch.bincount(torch.from_numpy(images.reshape(-1)), minlength=256).double().numpy()  # numpy's bincount: 15x slower
    values = np.arange(256, dtype=np.float64) / 255
    n = counts.sum()
    mean = float(counts @ values / n)
    return mean, float(np.sqrt(counts @ (values - mean) ** 2 / (n - 1)))


def read_fashion_mnist(root: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both splits' IDX arrays as stored (``uint8`` images ``[N, 28, 28]``, labels ``[N]``), read with
    numpy alone; raises :class:`DataError` when a file is missing or the counts disagree."""
    directory = fashion_mnist_dir(root)
    splits = {}
    for split, (images, labels) in FASHION_MNIST_FILES.items():
        x = _read_idx(_find_idx(directory, images))  # type: ignore[arg-type]
        y = _read_idx(_find_idx(directory, labels))  # type: ignore[arg-type]
        if len(x) != len(y):
            raise DataError(f"Fashion-MNIST {split}: {len(x)} images but {len(y)} labels in {directory}")
        splits[split] = (x, y)
    return splits


def load_fashion_mnist(root: str | None, subsets: dict[str, int | None] | None = None
                       ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], InputSpec, dict[str, str]]:
    """Both splits as ``(p - mean) / std`` of the pixels ``p = uint8 / 255``, ``mean``/``std`` of the
    full training set's pixels; that recipe as an :class:`InputSpec`; and the data's identity (the
    decoded IDX arrays' digests: the same whether the files are gzipped or not, or where they lie).
    ``subsets``: per split (``train``, ``test``) the first N examples only (``data.<split>_subset``),
    taken before the conversion to floats."""
    splits = read_fashion_mnist(root)
    identity = {}
    for split, (x, y) in splits.items():
        identity[f"{split} images"], identity[f"{split} labels"] = array_identity(x), array_identity(y)
    mean, std = pixel_statistics(splits["train"][0])  # of the full training set
    spec = InputSpec(channels=1, size=splits["train"][0].shape[-1], mean=[mean], std=[std], class_names=list(FASHION_MNIST_CLASSES))
    normalized = {}
    for split, (x, y) in splits.items():
        x, y = _subset((x, y), (subsets or {}).get(split), f"data.{split}_subset", "data.name=fashion_mnist")
        images = torch.from_numpy(x).float().div_(255).sub_(mean).div_(std).unsqueeze(1)
        normalized[split] = (images, torch.from_numpy(y.astype(np.int64)))
    return normalized, spec, identity


def synthetic(cfg: DictConfig) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A learnable random task: class-dependent mean images plus noise (fixed seed)."""
    gen = torch.Generator().manual_seed(1234)
    shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
    prototypes = torch.randn((cfg.num_classes, *shape), generator=gen)
    out = {}
    for split, n in (("train", cfg.synthetic_train_size), ("test", cfg.synthetic_test_size)):
        y = torch.randint(0, cfg.num_classes, (n,), generator=gen)
        out[split] = (prototypes[y] + 2.0 * torch.randn((n, *shape), generator=gen), y)
    return out


def _subset(pair: tuple, n: int | None, key: str, source: str) -> tuple:
    """The first ``n`` examples; more than the split has is a :class:`DataError` naming ``key``."""
    if n is not None and n > len(pair[0]):
        raise DataError(f"{key}={n} is not valid: {source} has {len(pair[0])} examples in that split; set at most {len(pair[0])}, "
                        f"or null for all of them")
    return pair if n is None else (pair[0][:n], pair[1][:n])


def build_tensor_data(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int, world_size: int) -> DataBundle:
    """Fashion-MNIST (``data.name=fashion_mnist``) or the synthetic task, in host memory (the
    trainer moves each batch to the device)."""
    if cfg.name == "fashion_mnist":
        splits, spec, identity = load_fashion_mnist(cfg.root, {"train": cfg.train_subset, "test": cfg.test_subset})
        train, test = splits["train"], splits["test"]
    else:
        splits, spec = synthetic(cfg), InputSpec(channels=cfg.in_channels, size=cfg.image_size, mean=None, std=None)
        identity = {f"{split} {part}": array_identity(tensor) for split, pair in splits.items()
                    for part, tensor in zip(("inputs", "labels"), pair)}
        source = "data.name=synthetic (synthetic_train_size / synthetic_test_size)"
        train = _subset(splits["train"], cfg.train_subset, "data.train_subset", source)
        test = _subset(splits["test"], cfg.test_subset, "data.test_subset", source)
    largest = int(max(train[1].max(), test[1].max()))
    if largest >= cfg.num_classes:
        raise DataError(f"data.num_classes={cfg.num_classes} is not valid: the labels of data.name={cfg.name} go up to {largest} "
                        f"(set data.num_classes={largest + 1})")
    if spec.class_names is not None and cfg.num_classes != len(spec.class_names):  # a named data set: its own count
        raise DataError(f"data.num_classes={cfg.num_classes} is not valid: data.name={cfg.name} has {len(spec.class_names)} classes "
                        f"(set data.num_classes={len(spec.class_names)}); a larger count would train outputs no label ever uses")
    return DataBundle(
        train=TensorLoader(*train, batch_size, shuffle=True, seed=seed, rank=rank, world_size=world_size, drop_last=True),
        test=TensorLoader(*test, eval_batch_size, shuffle=False, rank=rank, world_size=world_size),
        num_classes=cfg.num_classes,
        in_channels=train[0].shape[1],
        image_size=train[0].shape[-1],
        train_size=len(train[0]),
        test_size=len(test[0]),
        input=spec,
        identity=identity,
    )
