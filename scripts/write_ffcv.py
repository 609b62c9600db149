"""Write an ImageFolder tree into FFCV ``.beton`` files for ``data=ffcv_imagenet``.

    python scripts/write_ffcv.py SOURCE OUT [--max-side 500] [--jpeg-quality 90]
                                 [--compress-probability 0.5] [--workers N] [--skip-bad] [--force]

SOURCE holds ``train/<class>/<images>`` and ``val/<class>/<images>`` (ImageNet as usually
unpacked); OUT receives ``train.beton``, ``val.beton`` and ``dataset.json`` (class names, image
counts, skipped files, the settings). Defaults are FFCV's ResNet-50 settings: RGB, longest side at
most 500 px, a random half of the images (fixed per image) stored as JPEG of quality 90 and the
other half as raw pixels, the label the index of the class folder in sorted order.

Every image is first decoded once (reduced-size decode, in ``--workers`` processes) to find
unreadable files. By default one bad image stops the run before anything is written, naming the
files; with ``--skip-bad`` bad images are left out, counted, and listed in ``dataset.json``. Each
file is written under a temporary name (``*.beton.partial``) and renamed when complete, so a killed
write never leaves a ``.beton`` that looks complete. Existing outputs are kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.data.base import META_NAME, DataError  # noqa: E402  (META_NAME: what the loader reads beside the files)
from training.data.imagefolder import find_bad_images, scan_split  # noqa: E402

SPLITS = ("train", "val")
EXIT_BAD_INPUT = 2


class ImageFolderSamples:
    """``dataset[i]`` = (RGB uint8 H×W×3 array, label), for FFCV's writer processes. An image that
    fails to decode here (it passed the check) is recorded in ``failures`` and replaced by a black
    placeholder; the caller then discards the whole file."""

    def __init__(self, samples: list[tuple[Path, int]], failures: Path) -> None:
        self.samples, self.failures = samples, failures

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        np.random.seed(index)  # FFCV draws "JPEG or raw" from numpy's global state: fix it per image
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB")), label
        except Exception as error:
            with open(self.failures, "a") as f:
                f.write(f"{path}\t{type(error).__name__}: {error}\n")
            return np.zeros((8, 8, 3), np.uint8), label


class WriterFailed(Exception):
    """One of FFCV's writer processes failed (FFCV's own loop would then wait for it for ever)."""


#: where a failing writer process leaves its reason (set before FFCV forks them)
_failure_file: Path | None = None


def guarded_worker(*args: object) -> None:
    """FFCV's writer process body, reporting a failure (e.g. a full disk) to this process with
    SIGUSR1 instead of dying silently."""
    import ffcv.writer

    try:
        ffcv.writer._unguarded_worker(*args)  # type: ignore[attr-defined]
    except BaseException as error:
        assert _failure_file is not None
        with open(_failure_file, "a") as f:
            f.write(f"{type(error).__name__}\t{getattr(error, 'errno', '')}\t{error}\n")
        os.kill(os.getppid(), signal.SIGUSR1)
        raise SystemExit(1) from None


def _writer_failed(signum: int, frame: object) -> None:
    raise WriterFailed()


def write_split(samples: list[tuple[Path, int]], target: Path, args: argparse.Namespace) -> None:
    global _failure_file
    import ffcv.writer
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    fields = {
        "image": RGBImageField(write_mode="proportion", max_resolution=args.max_side, jpeg_quality=args.jpeg_quality,
                               compress_probability=args.compress_probability),
        "label": IntField(),
    }
    if not hasattr(ffcv.writer, "_unguarded_worker"):
        ffcv.writer._unguarded_worker = ffcv.writer.worker_job_indexed_dataset  # type: ignore[attr-defined]
        ffcv.writer.worker_job_indexed_dataset = guarded_worker
    with tempfile.TemporaryDirectory() as scratch:
        failures = Path(scratch) / "failures.tsv"
        failures.touch()
        _failure_file = Path(scratch) / "writer_failures.tsv"
        print(f"writing {target} ({len(samples)} images, {args.workers} workers)", flush=True)
        writer = DatasetWriter(str(partial), fields, num_workers=args.workers)
        previous = signal.signal(signal.SIGUSR1, _writer_failed)
        try:
            writer.from_indexed_dataset(ImageFolderSamples(samples, failures), chunksize=args.chunk_size)
        except (WriterFailed, OSError) as error:
            for process in multiprocessing.active_children():
                process.kill()
            sys.stderr.write("\n")  # FFCV's progress bar stays open on its line
            metadata = getattr(writer, "metadata_sm", None)
            if metadata is not None:  # FFCV's shared metadata block: released, not leaked
                metadata.close()
                metadata.unlink()
            partial.unlink(missing_ok=True)
            reason = _failure_file.read_text().splitlines()[0].split("\t") if _failure_file.exists() else [type(error).__name__, str(getattr(error, "errno", "")), str(error)]
            raise DataError(write_failure(target, int(reason[1]) if reason[1].isdigit() else None, reason[2])) from None
        finally:
            signal.signal(signal.SIGUSR1, previous)
        failed = failures.read_text().splitlines()
    if failed:
        partial.unlink(missing_ok=True)
        raise DataError(f"{len(failed)} image(s) failed to decode while writing {target.name} (nothing was kept): " + "; ".join(failed[:5]))
    os.replace(partial, target)


def write_failure(target: Path, code: int | None, detail: str) -> str:
    """One sentence for a write into ``target`` that failed with ``errno`` ``code``."""
    if code == errno.ENOSPC:
        free = shutil.disk_usage(target.parent).free / 2**20
        return (f"the disk holding {target.parent} is full ({free:.0f} MiB free) while writing {target.name}, which was not kept: "
                f"free space there or choose another OUT folder, then write the missing split again (--splits)")
    if code == errno.EROFS:
        return f"{target.parent} is on a read-only file system: choose a writable OUT folder"
    return f"writing {target} failed ({detail}), and it was not kept: check that {target.parent} is writable and has space"


def check_output(out: Path) -> None:
    """OUT must be a folder, or a path where one can be created, on a writable file system: said
    before anything is checked or written."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file, not a folder: give OUT as a folder (it receives train.beton, val.beton and dataset.json)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(f"{existing} is a file, so the folder {out} cannot be created inside it: give another OUT folder")
    if not os.access(existing, os.W_OK):
        read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
        why = "is on a read-only file system" if read_only else "is not writable by this user"
        raise DataError(f"{existing} {why}, so nothing can be written into {out}: choose another OUT folder")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder with train/<class>/ and val/<class>/")
    parser.add_argument("out", type=Path, help="folder for train.beton, val.beton and dataset.json")
    parser.add_argument("--max-side", type=int, default=500, help="longest image side stored, in pixels (default 500)")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality of the compressed images (default 90)")
    parser.add_argument("--compress-probability", type=float, default=0.5, help="fraction of images stored as JPEG, the rest raw (default 0.5)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument("--chunk-size", type=int, default=100, help="images per work item (default 100)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="which splits to write (default both)")
    parser.add_argument("--skip-bad", action="store_true", help="leave unreadable images out (counted) instead of stopping")
    parser.add_argument("--force", action="store_true", help="overwrite existing .beton files")
    args = parser.parse_args(argv)
    try:
        for name, value, rule in (("--max-side", args.max_side, args.max_side >= 8), ("--jpeg-quality", args.jpeg_quality, 1 <= args.jpeg_quality <= 100),
                                  ("--compress-probability", args.compress_probability, 0 <= args.compress_probability <= 1),
                                  ("--workers", args.workers, args.workers >= 1), ("--chunk-size", args.chunk_size, args.chunk_size >= 1)):
            if not rule:
                raise DataError(f"{name}={value} is not valid (max-side >= 8, jpeg-quality 1-100, compress-probability 0-1, workers and chunk-size >= 1)")
        write(args)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def write(args: argparse.Namespace) -> None:
    check_output(args.out)
    targets = {split: args.out / f"{split}.beton" for split in args.splits}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not args.force:
        raise DataError(f"{', '.join(existing)} already exist(s); pass --force to overwrite")
    classes, samples = None, {}
    for split in args.splits:  # scan everything before writing anything
        found, samples[split] = scan_split(args.source / split, classes)
        classes = classes or found
    assert classes is not None
    meta_path = args.out / META_NAME
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("classes", classes) != classes:
        raise DataError(f"{meta_path} lists other classes than {args.source}: write into an empty folder")
    meta.update(classes=classes, settings={k: getattr(args, k) for k in ("max_side", "jpeg_quality", "compress_probability")})
    bad = {}
    for split in args.splits:
        bad[split] = find_bad_images(samples[split], args.workers, split)
        if bad[split] and not args.skip_bad:
            listed = "; ".join(f"{p} ({r})" for p, r in bad[split][:10])
            raise DataError(f"{len(bad[split])} unreadable image(s) in {args.source / split}, nothing written: {listed}. "
                            f"Remove or replace them, or pass --skip-bad to leave them out")
    created = [] if args.out.exists() else [args.out, *[p for p in args.out.parents if not p.exists()]]
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(write_failure(args.out / "train.beton", error.errno, str(error))) from None
    try:
        write_splits(args, samples, bad, targets, meta, meta_path)
    except DataError:
        for folder in created:  # the folders this call made, if nothing is in them: as they were
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def write_splits(args: argparse.Namespace, samples: dict, bad: dict, targets: dict[str, Path], meta: dict, meta_path: Path) -> None:
    for split in args.splits:
        skipped = {p for p, _ in bad[split]}
        kept = [(p, label) for p, label in samples[split] if str(p) not in skipped]
        start = time.perf_counter()
        try:
            write_split(kept, targets[split], args)
        except DataError as error:
            done = [targets[s].name for s in args.splits[: args.splits.index(split)]]
            raise DataError(f"{error}" + (f" ({', '.join(done)} complete and kept)" if done else "")) from None
        seconds = time.perf_counter() - start
        meta.setdefault("splits", {})[split] = {"images": len(kept), "skipped": len(skipped), "skipped_files": sorted(skipped),
                                                "bytes": targets[split].stat().st_size, "write_seconds": round(seconds, 1)}
        print(f"{targets[split]}: {len(kept)} images, {len(skipped)} skipped, {targets[split].stat().st_size / 2**20:.1f} MiB "
              f"in {seconds:.1f} s", flush=True)
        tmp = meta_path.with_name(META_NAME + ".tmp")
        try:
            tmp.write_text(json.dumps(meta, indent=1) + "\n")
            os.replace(tmp, meta_path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise DataError(write_failure(meta_path, error.errno, str(error)) + f" ({targets[split].name} itself is complete)") from None


if __name__ == "__main__":
    sys.exit(main())
