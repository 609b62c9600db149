"""Run by ``torchrun --nproc_per_node=2`` in tests: train with the real Trainer, then dump this
rank's final parameters and buffers so that the test can compare the ranks."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.compose import compose_config  # noqa: E402
from training.loop import Trainer  # noqa: E402


def main() -> None:
    out_dir = Path(sys.argv[1])
    trainer = Trainer(compose_config(sys.argv[2:]), out_dir)
    trainer.fit()
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    torch.save(state, out_dir / f"rank{trainer.env.rank}.pt")
    trainer.close()


if __name__ == "__main__":
    main()
