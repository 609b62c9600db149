"""Train a model with HAM (or a baseline): ``python train.py [group=option ...] [key=value ...]``.

See README.md for the config groups; ``python train.py --help`` lists them, ``--cfg job`` prints
the composed configuration.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm must not wait on a hub lookup

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from training.checkpoint import CheckpointError
from training.config import ConfigError, check_override_types, register_configs, validate
from training.data import DataError
from training.distributed import DistributedStartError, end_process
from training.out_of_memory import out_of_memory
from training.preemption import EXIT_INTERRUPTED, Interrupted, Stopped, exit_code
from training.presets import apply_preset, fill_presets_when_composed, preset_recipe_warning
from training.records import TrainLog, recorded
from training.hydra_callbacks import Refused
from training.rundir import RUN_CONFIG_DIR, RunDirectoryBusy, clear_failure, record_failure, save_run_config

register_configs()
fill_presets_when_composed()  # --cfg job shows the per-target presets a run uses

EXIT_CONFIG, EXIT_DIVERGED = 2, 3


def fail(code: int, message: str, cfg: DictConfig, log: TrainLog) -> Refused | dict:
    """Report a failed run. A single run returns :class:`Refused`: the run directory's callback
    (``training.hydra_callbacks.RunDirectoryCheck``) removes the directories Hydra created for it
    and exits with ``code``. Inside a multirun, record the message in the run directory's
    ``failed.txt`` and ``train.log`` (and the configuration, if the directory has none yet) and
    return, so that the sweep's other jobs still run."""
    print(f"error: {message}", file=sys.stderr)
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        if "run_directory_check" not in HydraConfig.get().callbacks:  # the callback that exits was removed
            sys.exit(code)
        return Refused(code)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    record_failure(run_dir, message)
    if not log.kept:
        log.keep(run_dir, job_command())
    if not (run_dir / RUN_CONFIG_DIR / "config.yaml").exists():
        save_run_config(run_dir, cfg)
    return {}


def job_command() -> str:
    """This job as a train.py command: the command line itself, or, in a job that a launcher
    started (submitit's ``_submit.py`` on SLURM), ``train.py`` with the job's overrides."""
    if Path(sys.argv[0]).name == "train.py":
        return " ".join(sys.argv)
    return " ".join([str(Path(__file__).resolve()), *HydraConfig.get().overrides.task]) + f"  (a job started by {sys.argv[0]})"


def target_text(summary: dict) -> str:
    """`` (target 90%)`` for a sparse run, `` (target 90%: MISSED)`` when it missed it."""
    if summary.get("target") is None:
        return ""
    return f" (target {100 * summary['target']:g}%" + (": MISSED)" if summary.get("target_missed") else ")")


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> dict | Refused:
    log = TrainLog().start()  # kept as train.log once the run passed its checks
    try:
        return run(cfg, log)
    finally:
        log.close()


def run(cfg: DictConfig, log: TrainLog) -> dict | Refused:
    from training.loop import Trainer, TrainingDiverged

    try:
        check_override_types(OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))  # a boolean key given 2 or "yes"
        apply_preset(cfg)  # the method's knob for its target (STR, PILoT, spred), unless set
        validate(cfg)
        trainer = Trainer(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (ConfigError, DataError, CheckpointError, RunDirectoryBusy, DistributedStartError) as error:
        return fail(EXIT_CONFIG, str(error), cfg, log)
    except (RuntimeError, MemoryError, OSError) as error:
        message = out_of_memory(error, cfg)
        if message is None:
            raise
        return fail(EXIT_CONFIG, message, cfg, log)
    if trainer.env.is_main:
        save_run_config(trainer.run_dir, cfg)  # only now: a refused run leaves an existing run's records alone
        log.keep(trainer.run_dir, job_command())
        warning = preset_recipe_warning(cfg, trainer.env.world_size)  # a preset measured with another recipe
        if warning:
            print(warning, file=sys.stderr)
    try:
        summary = trainer.fit()
    except Stopped as stopped:  # SIGUSR1/SIGUSR2/SIGTERM/SIGINT: the position is saved; hand the signal on and exit
        trainer.close(exit_code=exit_code(stopped.signum))
        if trainer.env.is_main:
            print(f"{stopped} (exit code {exit_code(stopped.signum)})", file=sys.stderr)
        trainer.stop.hand_on(stopped.signum)
    except Interrupted:  # a second Ctrl-C: at once, without saving
        trainer.close(exit_code=EXIT_INTERRUPTED)
        raise
    except TrainingDiverged as error:
        trainer.close(exit_code=EXIT_DIVERGED)
        return fail(EXIT_DIVERGED, f"training diverged: {error}", cfg, log)
    except CheckpointError as error:  # the checkpoint could not be written
        trainer.close(exit_code=EXIT_CONFIG)
        return fail(EXIT_CONFIG, str(error), cfg, log)
    except Exception as error:  # a bug: in a sweep, recorded (failed.txt) so that the other jobs run
        message = out_of_memory(error, cfg)
        if message is not None:
            trainer.close(exit_code=EXIT_CONFIG)
            return fail(EXIT_CONFIG, message, cfg, log)
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            log.record(traceback.format_exc())  # Hydra prints it on the console
            raise
        trainer.close(exit_code=1)
        return fail(1, f"{type(error).__name__}: {error}\n{traceback.format_exc()}", cfg, log)
    trainer.close()
    clear_failure(trainer.run_dir)  # a resumed run that failed before
    if trainer.env.is_main:
        acc = summary["test_acc"]
        acc5 = summary["test_acc5"]
        print(
            f"done: {recorded(cfg)['name']} test_acc={100 * acc:.2f}% test_acc5={100 * acc5:.2f}% "
            f"train_loss={summary['train_loss']:.4f} sparsity={100 * summary['sparsity']:.2f}%{target_text(summary)} "
            f"sign_flips(last epoch)={summary['sign_flips']} epochs={summary['epoch']} "
            f"in {summary['wall_time_s']:.1f}s -> {summary['run_dir']}"
        )
    return summary


if __name__ == "__main__":
    try:
        main()
    except SystemExit as stop:  # Hydra's and the run directory check's exit codes, passed on as they are
        end_process(stop.code)
    except KeyboardInterrupt:  # Ctrl-C before training started (in training it saves: training.preemption)
        print("\ninterrupted by Ctrl-C outside the training steps: nothing was saved now (a checkpoint written before "
              "stays, and the same command continues from it)", file=sys.stderr)
        end_process(EXIT_INTERRUPTED)
    end_process()  # a distributed rank without the finalization in which gloo's threads can abort it
