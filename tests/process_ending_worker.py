"""A torchrun worker for tests/test_process_end.py: both ranks start their process group with
``training.distributed.init_distributed``, run one all_reduce whose tensor's Python object is gone
before gloo's worker thread lets go of it (rank 0 joins a second late), and end either as a script
ends (``plain``: the interpreter's finalization) or through ``end_process`` (rank 1 with the status
given as the second argument)."""

import atexit
import sys
import time

import torch
import torch.distributed as dist

from training.distributed import end_process, init_distributed

env = init_distributed(device="cpu")


class Finalized:
    def __del__(self) -> None:
        print(f"rank {env.rank}: finalized", flush=True)


kept = Finalized()  # a module global: collected only in the interpreter's finalization
atexit.register(print, f"rank {env.rank}: atexit ran", flush=True)
if env.rank == 0:
    time.sleep(1.0)
    dist.all_reduce(torch.ones(1000))
else:
    dist.all_reduce(torch.ones(1000), async_op=True)
junk = [[i] for i in range(5_000_000)]  # a finalization long enough for gloo's thread to act in it
print(f"rank {env.rank}: buffered")  # stdout is a pipe: block-buffered until flushed
if sys.argv[1] == "end_process":
    end_process(int(sys.argv[2]) if env.rank == 1 else 0)
