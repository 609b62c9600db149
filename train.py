"""Train a model with HAM (or a baseline): ``python train.py [group=option ...] [key=value ...]``.

See README.md for the config groups; ``python train.py --help`` lists them, ``--cfg job`` prints
the composed configuration.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm must not wait on a hub lookup

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from training.checkpoint import CheckpointError
from training.config import ConfigError, register_configs, validate
from training.data import DataError

register_configs()

EXIT_CONFIG, EXIT_DIVERGED = 2, 3


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    from training.loop import Trainer, TrainingDiverged

    try:
        validate(cfg)
        trainer = Trainer(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (ConfigError, DataError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    try:
        summary = trainer.fit()
    except TrainingDiverged as error:
        print(f"error: training diverged: {error}", file=sys.stderr)
        trainer.close(exit_code=EXIT_DIVERGED)
        sys.exit(EXIT_DIVERGED)
    trainer.close()
    if trainer.env.is_main:
        acc = summary["test_acc"]
        acc5 = summary["test_acc5"]
        print(
            f"done: {cfg.name} test_acc={100 * acc:.2f}% test_acc5={100 * acc5:.2f}% "
            f"train_loss={summary['train_loss']:.4f} sparsity={100 * summary['sparsity']:.2f}% "
            f"sign_flips(last epoch)={summary['sign_flips']} epochs={summary['epoch']} "
            f"in {summary['wall_time_s']:.1f}s -> {summary['run_dir']}"
        )
    return summary


if __name__ == "__main__":
    main()
