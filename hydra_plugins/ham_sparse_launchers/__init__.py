"""The SLURM launcher (``hydra/launcher=slurm``): submitit's, with a submission that the cluster
refuses said in one sentence, with sbatch's reason and the launcher keys that ask for resources,
and exit code 2 (submitit raises it as a traceback); so is a machine without SLURM's commands
(submitit: ``RuntimeError: Could not detect "srun"``). Hydra takes launchers only from the
``hydra_plugins`` namespace package: this folder joins it when the checkout is on the path (as it
is for ``python train.py``)."""

from __future__ import annotations

import shutil
import sys
from typing import Any, Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
except ImportError:  # hydra-submitit-launcher is not installed (a bare GPU machine): no SLURM launcher, and no warning
    SlurmLauncher = None  # type: ignore[assignment,misc]

#: what submitting needs on the machine that launches
SLURM_COMMANDS = ("sbatch", "srun")
#: the launcher keys that decide what a job asks SLURM for
RESOURCE_KEYS = ("partition", "nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min")


if SlurmLauncher is not None:
    class CheckedSlurmLauncher(SlurmLauncher):
        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
            from submitit.core.utils import FailedJobError

            missing = [command for command in SLURM_COMMANDS if shutil.which(command) is None]
            if missing:
                print(f"error: hydra/launcher submits to SLURM, but SLURM's commands ({', '.join(missing)}) are not on PATH here: "
                      f"launch from a SLURM login node, or run the sweep on this machine with hydra/launcher=local", file=sys.stderr)
                sys.exit(2)
            try:
                return super().launch(job_overrides, initial_job_idx)
            except FailedJobError as error:
                reason = " ".join(str(error).split())
                if "sbatch" not in reason:  # a job that failed after it started: submitit's own report
                    raise
                asked = ", ".join(f"hydra.launcher.{k}={self.params.get(k)}" for k in RESOURCE_KEYS)
                print(f"error: SLURM refused the submission ({reason}); it asked for {asked}: change those keys to what the partition "
                      f"has (a CPU partition: hydra/launcher=slurm_cpu, one task and one core per job, no GPU)", file=sys.stderr)
                sys.exit(2)
