"""What of FFCV 1.0.2 (pinned in ``pyproject.toml``) the loader of ``data=ffcv_imagenet`` changes, and why;
each is tested (``tests/test_ffcv_loader.py``). Importing this module applies the first one to FFCV globally.

* FFCV's ``Compiler.set_num_threads`` also sets torch's intra-op threads to the loader's worker
  count (to 1 when FFCV is imported, then from the loader's background thread in the middle of
  training); here it sets numba's threads only, and torch's stay what ``trainer.threads`` chose.
* FFCV's iterator has no way to hand an epoch number to its compiled pipeline; the decoder gets
  the epoch's key through a small buffer of its own that the iterator fills before it starts.
* An exception in FFCV's pipeline thread left the training loop waiting forever; it is raised.
* FFCV's ``QUASI_RANDOM`` order shuffled its page table in place, so an epoch's order depended on
  the epochs before it; here each epoch starts from the same table.

A newer FFCV may make any of these unnecessary: check each against its release notes before
raising the pin.
"""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING, Callable

import numba
import numpy as np
import torch

_TORCH_THREADS = torch.get_num_threads()  # importing FFCV sets torch's threads to 1; restored below

from ffcv.loader import Loader as FfcvLoaderBase  # noqa: E402
from ffcv.loader.epoch_iterator import IS_CUDA, EpochIterator  # noqa: E402
from ffcv.pipeline.compiler import Compiler  # noqa: E402
from ffcv.traversal_order.base import TraversalOrder  # noqa: E402
from ffcv.traversal_order.quasi_random import QuasiRandom  # noqa: E402
from torch.utils.data import DistributedSampler  # noqa: E402

from training.data.augment import epoch_key  # noqa: E402
from training.data.base import DataError  # noqa: E402

if TYPE_CHECKING:
    from training.data.ffcv_loader import SeededRandomResizedCrop


def _numba_threads_only(cls, n: int) -> None:
    """``Compiler.set_num_threads`` without the torch side effect: numba's threads only."""
    n = n if n >= 1 else multiprocessing.cpu_count()
    cls.num_threads = n
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


Compiler.set_num_threads = classmethod(_numba_threads_only)
torch.set_num_threads(_TORCH_THREADS)


class KeyedEpochIterator(EpochIterator):
    """FFCV's epoch iterator, with the decoder's key buffer filled before the pipeline starts, and
    an error in the pipeline thread raised in the training loop (FFCV's own iterator would wait
    for the next batch forever)."""

    def __init__(self, loader: "KeyedLoader", order: np.ndarray, key: int) -> None:
        self._key = key
        super().__init__(loader, order)

    def start(self) -> None:  # called at the end of EpochIterator.__init__, after allocation
        if self.loader.keyed_decoder is not None:
            node = self.loader.graph.operation_to_node[self.loader.keyed_decoder][0]
            self.memory_allocations["operation"][node.id][2][...] = np.uint64(self._key)
        super().start()

    def run(self) -> None:
        try:
            super().run()
        except BaseException as error:  # handed to the consumer, which raises it
            self.output_queue.put((None, error))

    def __next__(self):  # EpochIterator.__next__, raising a pipeline error
        item = self.output_queue.get()
        if item is None:
            self.close()
            raise StopIteration()
        slot, result = item
        if isinstance(result, BaseException):
            self.close()
            raise DataError(f"the FFCV pipeline of {self.loader.fname} failed: {type(result).__name__}: {result}") from result
        if IS_CUDA:
            self.current_stream.wait_stream(self.cuda_streams[slot])
        return result


class DistributedSamplerOrder(TraversalOrder):
    """The training order of FFCV's ``RANDOM`` with ``distributed=True`` — PyTorch's
    DistributedSampler seeded with ``seed`` and set to the epoch — but with the rank and the world
    size given, so that one process gets the same order as well (and the same as
    ``data=imagefolder``)."""

    def __init__(self, loader: FfcvLoaderBase, rank: int, world_size: int) -> None:
        super().__init__(loader)
        self.sampler = DistributedSampler(self.indices, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed, drop_last=False)

    def sample_order(self, epoch: int) -> np.ndarray:
        self.sampler.set_epoch(epoch)
        return self.indices[np.fromiter(self.sampler, dtype=np.int64)]


class ReproducibleQuasiRandom(QuasiRandom):
    """FFCV's ``QUASI_RANDOM`` order, made a function of ``(seed, epoch)``: FFCV's own shuffles its
    page table in place, so its epoch ``e`` depended on the epochs drawn before (and a resumed run
    got another order)."""

    def sample_order(self, epoch: int) -> np.ndarray:
        pristine = self.page_to_samples_array
        self.page_to_samples_array = pristine.copy()
        try:
            return super().sample_order(epoch)
        finally:
            self.page_to_samples_array = pristine


class KeyedLoader(FfcvLoaderBase):
    """An FFCV loader whose next epoch is set from outside (``next_epoch``), whose decoder (if
    keyed) receives that epoch's augmentation key, and whose pipeline errors are raised.
    ``traversal`` builds the training order (:class:`DistributedSamplerOrder` or
    :class:`ReproducibleQuasiRandom`)."""

    def __init__(self, *args, keyed_decoder: SeededRandomResizedCrop | None = None, augment_seed: int = 0,
                 traversal: Callable[[FfcvLoaderBase], TraversalOrder] | None = None, **kwargs) -> None:
        self.keyed_decoder, self.augment_seed = keyed_decoder, augment_seed
        super().__init__(*args, **kwargs)
        if traversal is not None:  # FFCV's Loader takes no traversal-order class (its isinstance check refuses one)
            self.traversal_order = traversal(self)
            self.first_traversal_order = self.next_traversal_order()

    start_batch = 0  # the next pass begins at this batch of its epoch

    def __iter__(self):  # FFCV's Loader.__iter__ with our iterator
        Compiler.set_num_threads(self.num_workers)
        epoch = self.next_epoch
        start, self.start_batch = self.start_batch, 0
        order = self.next_traversal_order()[start * self.batch_size : len(self) * self.batch_size]
        self.next_epoch += 1
        if self.code is None or self.recompile:
            self.generate_code()
        return KeyedEpochIterator(self, order, epoch_key(self.augment_seed, epoch))
