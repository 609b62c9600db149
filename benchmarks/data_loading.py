"""Training images per second: the FFCV loader (``data=ffcv_imagenet``) against the ImageFolder
DataLoader fallback (``data=imagefolder``: PIL decode, the same crop/flip/normalise), on the same
JPEGs, with the same number of workers, at 160 and 192 px.

The JPEGs are ImageNet-sized (500 × 375 px, about the median ImageNet image) mosaics of 4 × 3
Fashion-MNIST items, coloured, with mild noise so that they compress like photographs
(quality 90). The ``.beton`` is written from them with the writer's defaults (longest side 500 px,
half JPEG, half raw). Each measurement is one full training epoch through the real loader
(``training.data.build_data``), after one warm-up epoch (FFCV's JIT, worker start-up); the two
loaders alternate, and the table gives medians over the repeats and the median of the per-repeat
ratios. Writes ``results/data_loading.md``.

    python benchmarks/data_loading.py [--images 1024] [--repeats 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ffcv.reader import Reader
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.config import compose_config  # noqa: E402
from training.data.sample_jpegs import coloured  # noqa: E402
from training.data import build_data  # noqa: E402
from training.data.tensors import FASHION_MNIST_FILES, _find_idx, _read_idx, fashion_mnist_dir  # noqa: E402

RESULTS = REPO / "results" / "data_loading.md"
WIDTH, HEIGHT, CLASSES = 500, 375, 10


def make_photo_like_jpegs(root: Path, n: int, n_val: int) -> None:
    directory = fashion_mnist_dir(None)
    images = _read_idx(_find_idx(directory, FASHION_MNIST_FILES["train"][0]))
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("val", n_val)):
        for c in range(CLASSES):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            tiles = [coloured(images[rng.integers(len(images))]) for _ in range(12)]  # 64 px each
            mosaic = np.concatenate([np.concatenate(tiles[r * 4 : (r + 1) * 4], axis=1) for r in range(3)], axis=0)
            photo = np.asarray(Image.fromarray(mosaic).resize((WIDTH, HEIGHT), Image.BILINEAR), dtype=np.float32)
            photo = np.clip(photo + rng.normal(0, 8, photo.shape), 0, 255).astype(np.uint8)
            Image.fromarray(photo).save(root / split / f"class{i % CLASSES}" / f"{i:05d}.JPEG", quality=90)


def epoch_rate(loader, epoch: int) -> float:
    loader.set_epoch(epoch)
    start, n = time.perf_counter(), 0
    for _, y in loader:
        n += len(y)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1024, help="training images (default 1024)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="loader workers (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        tree, out = Path(scratch) / "tree", Path(scratch) / "beton"
        make_photo_like_jpegs(tree, args.images, 64)
        jpeg_kib = sum(p.stat().st_size for p in (tree / "train").rglob("*.JPEG")) / args.images / 1024
        start = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "scripts" / "write_ffcv.py"), str(tree), str(out), "--workers", str(args.workers)],
                       check=True, capture_output=True)
        write_s = time.perf_counter() - start
        stored_kib = int(Reader(str(out / "train.beton")).alloc_table["size"].sum()) / args.images / 1024
        rows = []
        for res in (160, 192):
            common = ["data.workers=" + str(args.workers), f"data.min_res={res}", f"data.max_res={res}", f"data.val_res={res}"]
            loaders = {
                "ffcv": build_data(compose_config(["data=ffcv_imagenet", f"data.root={out}", *common]).data, args.batch_size, 256, 0).train,
                "imagefolder": build_data(compose_config(["data=imagefolder", f"data.root={tree}", *common]).data, args.batch_size, 256, 0).train,
            }
            for loader in loaders.values():
                epoch_rate(loader, 0)  # warm-up: FFCV compiles, DataLoader starts its workers
            rates: dict[str, list[float]] = {name: [] for name in loaders}
            for r in range(args.repeats):
                for name, loader in loaders.items():
                    rates[name].append(epoch_rate(loader, r + 1))
            ratios = [f / i for f, i in zip(rates["ffcv"], rates["imagefolder"])]
            rows.append((res, statistics.median(rates["ffcv"]), statistics.median(rates["imagefolder"]), statistics.median(ratios),
                         min(ratios), max(ratios)))
            print(f"{res} px: FFCV {rows[-1][1]:.0f} img/s, ImageFolder {rows[-1][2]:.0f} img/s, ratio {rows[-1][3]:.2f}", flush=True)
    write_report(args, rows, jpeg_kib, stored_kib, write_s)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def write_report(args, rows, jpeg_kib: float, stored_kib: float, write_s: float) -> None:
    n_written = args.images + 64
    per_core = write_s * args.workers / n_written
    lines = [
        "# Data loading benchmark",
        "",
        f"Command: `python benchmarks/data_loading.py --images {args.images} --repeats {args.repeats} --workers {args.workers}`",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, no GPU; torch {torch.__version__}, ffcv 1.0.2; "
        f"{args.workers} loader workers for both, batch {args.batch_size}, torch on 1 thread.",
        f"Data: {args.images} training JPEGs of {WIDTH}×{HEIGHT} px (mean {jpeg_kib:.0f} KiB; photo-like mosaics of Fashion-MNIST, "
        f"see the script), the .beton written with the defaults ({stored_kib:.0f} KiB per image stored).",
        "",
        "Training images per second over one full epoch (random-resized crop to the resolution, flip, normalisation to float32), "
        f"median of {args.repeats} alternating repeats after a warm-up epoch:",
        "",
        "| resolution | FFCV img/s | ImageFolder DataLoader img/s | FFCV / DataLoader (median, min–max) |",
        "|---:|---:|---:|---:|",
    ]
    for res, ffcv_rate, folder_rate, ratio, low, high in rows:
        lines.append(f"| {res} px | {ffcv_rate:.0f} | {folder_rate:.0f} | {ratio:.2f} ({low:.2f}–{high:.2f}) |")
    lines += [
        "",
        f"Writing: {n_written} images in {write_s:.1f} s with {args.workers} processes (checking pass included), "
        f"i.e. {per_core * 1000:.0f} ms per image per core. Extrapolated to ImageNet-1k (1,281,167 + 50,000 images): "
        f"{per_core * 1_331_167 / 3600:.0f} core-hours (e.g. {per_core * 1_331_167 / 3600 / 32:.1f} h on 32 cores), "
        f"about {stored_kib * 1_331_167 / 2**20:.0f} GiB at {stored_kib:.0f} KiB per image "
        "(real photographs have more detail than these mosaics: expect more bytes per JPEG-stored image).",
        "",
        "Why the ratio is about 2 here and not the many-fold of ffcv-imagenet's claim: on 2 cores both loaders are bound by "
        "per-image CPU work, most of it JPEG decoding (libjpeg-turbo in both). FFCV skips decoding for the half of the images "
        "stored raw, resizes with OpenCV, and flips and normalises in one pass of its compiled parallel loop without Python "
        "per image; the DataLoader decodes every image with PIL and pays Python, pickling and inter-process copies per image. "
        "FFCV's larger claims are for many-core nodes feeding 8 GPUs, where the DataLoader's per-process overheads dominate.",
        "",
        "Regenerate with the command above (about two minutes on 2 cores).",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
