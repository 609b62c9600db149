"""ImageNet from FFCV ``.beton`` files (``data=ffcv_imagenet``).

The loader itself is the subject of the next piece of work; until then this module only locates
the files and says precisely what is missing, so that an ImageNet experiment stops at once with a
clear message instead of failing deep inside a run.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from training.data import DataBundle, DataError

FILES = ("train.beton", "val.beton")


def build_ffcv_imagenet(cfg: DictConfig, batch_size: int, eval_batch_size: int, seed: int, rank: int, world_size: int) -> DataBundle:
    root = Path(cfg.root).expanduser() if cfg.root else None
    missing = [name for name in FILES if root is None or not (root / name).exists()]
    if missing:
        where = f"data.root={cfg.root}" if root else "data.root is not set"
        raise DataError(
            f"ImageNet FFCV files not found ({where}; missing: {', '.join(missing)}). Write them with FFCV's "
            f"ImageNet writer and pass data.root=/dir/with/train.beton+val.beton, or run the same method at small "
            f"scale on Fashion-MNIST with setting=small."
        )
    raise DataError(
        "the FFCV ImageNet loader is not implemented in this version of the repository (the .beton files were "
        f"found in {root}); use setting=small, or data=imagefolder data.root=/path/to/imagenet for a plain DataLoader."
    )
