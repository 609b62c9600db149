"""The training loop: one :class:`Trainer` that composes data, model, optimizer stack, schedule,
distributed execution, checkpoints and run records."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from ham import SignFlips, density
from training.methods import build_method
from sparse.prunable import prunable_layers
from training import distributed as D
from training.cell import target_of
from training.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_data,
    check_entries,
    load_checkpoint,
    rng_state,
    save_atomic,
    set_rng_state,
    settings_differences,
)
from training.config import ConfigError
from training.data import build_data
from training.export import export_model
from training.models import build_model, constructor, constructor_expression
from training.optim import build_optimizer, peak_lr, uses_sam
from training.preemption import StopSignals, Stopped
from training.presets import missed_target
from training.records import RunRecords, console_stderr
from training.hydra_callbacks import SWEEP_THREADS_VARIABLE
from training.rundir import RunDirectoryBusy, RunLock
from training.schedule import lr_multiplier
from training.trajectory import trajectory_config, trajectory_fingerprint


class TrainingDiverged(RuntimeError):
    """The loss or the weights became non-finite; the message names the step and the layer."""


@contextlib.contextmanager
def frozen_bn_statistics(model: torch.nn.Module) -> Iterator[None]:
    """Run a forward pass without updating BatchNorm running statistics (SAM's second pass)."""
    saved = []
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.momentum is not None:
            saved.append((m, m.momentum))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


def load_warning(load: float, cores: int, threads: int) -> str | None:
    """One sentence when the machine is already busier than its cores (the 1-minute load average
    ``load`` above ``cores``): a CPU run's threads then compete and a step can take several times
    longer (9x measured with 2 threads beside another job on 2 cores). The default is not changed."""
    if load <= cores:
        return None
    advice = ("set trainer.threads=1 (or run fewer jobs side by side)" if threads > 1 else "run fewer jobs side by side")
    return (f"warning: the machine's load (1-minute average {load:.1f}) already exceeds its {cores} cores, and this run uses "
            f"{threads} torch thread(s): steps will be slower, several times so on a CPU; {advice} if other work keeps the cores busy")


class Trainer:
    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        t = cfg.trainer
        threads = t.threads if t.threads is not None else os.environ.get(SWEEP_THREADS_VARIABLE)  # a local sweep's share
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.env = D.init_distributed(t.device, t.rendezvous_timeout_s)
        busy_cores = load_warning(os.getloadavg()[0], os.cpu_count() or 1, torch.get_num_threads())
        if busy_cores and self.env.is_main and self.env.device.type == "cpu":
            print(busy_cores, file=sys.stderr)
        if self.env.device.type == "cuda":  # as FFCV's recipe: input shapes change only between epochs
            torch.backends.cudnn.benchmark = True
        self.lock = RunLock(run_dir)
        busy = D.broadcast_from_main(self.lock.acquire() if self.env.is_main else None, self.env)
        if busy:  # every rank stops, with rank 0's message
            raise RunDirectoryBusy(busy)
        try:
            self._build(cfg, run_dir)
        except BaseException:  # refused (data, checkpoint, ...): leave the directory as it was
            self.lock.give_back()
            raise

    def _build(self, cfg: DictConfig, run_dir: Path) -> None:
        t = cfg.trainer
        torch.manual_seed(t.seed)  # the same initial weights on every rank
        self.data = build_data(cfg.data, t.batch_size, t.eval_batch_size, t.seed, self.env.rank, self.env.world_size, self.env.device)
        model = build_model(cfg.model, self.data.in_channels, self.data.image_size, self.data.num_classes)
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        self.model = model.to(self.env.device, memory_format=self.memory_format)
        self.method = build_method(cfg.sparsity)
        self.method.prepare(self.model)  # reparameterizations and initial masks, before DDP and the optimizer
        self.net: torch.nn.Module = self.model
        if self.env.distributed:
            device_ids = [self.env.local_rank] if self.env.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.lr = peak_lr(cfg.optimizer, t.batch_size * self.env.world_size)
        self.optimizer = build_optimizer(
            self.model, cfg, self.lr, self.method.decayed_parameters(), self.method.undecayed_parameters()
        )
        self.sam = uses_sam(self.optimizer)
        self.steps_per_epoch = len(self.data.train)
        if t.max_steps_per_epoch is not None:
            self.steps_per_epoch = min(self.steps_per_epoch, t.max_steps_per_epoch)
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"trainer.batch_size={t.batch_size} is not valid here: {self.data.train_size} training examples over "
                f"{self.env.world_size} process(es) do not fill one batch"
            )
        self.method.attach(self.optimizer, self.steps_per_epoch, t.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_multiplier(cfg.schedule, t.epochs, self.steps_per_epoch)
        )
        # sign flips of the tensors the optimizer updates (for θ = m ⊙ w: of w), density of θ
        self.named_weights = [(n, p) for n, p in self.model.named_parameters() if p.ndim >= 2]
        self.flips = SignFlips(self.named_weights)
        self.prunable = prunable_layers(self.model)
        self.autocast_dtype = torch.bfloat16 if t.amp else None
        self.epoch, self.global_step, self.wall_time = 0, 0, 0.0
        self.history: list[dict[str, Any]] = []
        #: inside an epoch (a run stopped by a signal): steps done and the epoch's running sums
        self.partial: dict[str, Any] | None = None
        self.stop = StopSignals()
        self.config = trajectory_config(cfg)  # as recorded: ${oc.env:...} as written
        self.fingerprint = trajectory_fingerprint(cfg)  # with the values read from the environment
        run_id = hashlib.sha256(f"{run_dir.resolve()}:{self.fingerprint}".encode()).hexdigest()[:16]
        self._resume()
        self.records = RunRecords(run_dir, cfg, self.env.is_main, run_id, self.history, self.env.world_size)

    # -- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    def _resume(self) -> None:
        mode = self.cfg.trainer.resume
        path = self.checkpoint_path
        if mode not in ("auto", "never"):
            path = Path(mode)
            if path.is_dir():
                path = path / CHECKPOINT_NAME
            if not path.exists():
                raise CheckpointError(f"trainer.resume={mode!r}: no checkpoint at {path}")
        elif not path.exists():
            return
        elif mode == "never":
            raise CheckpointError(
                f"{path} exists and trainer.resume=never: refusing to overwrite it. Use trainer.resume=auto "
                f"to continue that run, or another run directory (name=... or hydra.run.dir=...)."
            )
        payload = load_checkpoint(path, self.config, self.fingerprint)
        check_entries(payload, path)
        where = f"data.name={self.cfg.data.name}" + (f" at data.root={self.cfg.data.root}" if self.cfg.data.get("root") else "")
        unchecked = check_data(payload, self.data.identity, path, where)
        if unchecked and self.env.is_main:
            print(unchecked, file=sys.stderr)
        saved_world = payload["world_size"]
        if saved_world != self.env.world_size:
            raise CheckpointError(
                f"checkpoint {path} was written by a run with {saved_world} process(es), this run has {self.env.world_size}: "
                f"its step counter, learning-rate schedule and sparsity timelines count steps of {saved_world} process(es), so "
                f"continuing would change their meaning. Resume with {saved_world} process(es) (torchrun "
                f"--nproc_per_node={saved_world}, or srun --ntasks={saved_world}), or start a new run directory."
            )
        changed = settings_differences(payload["optimizer"], self.optimizer.state_dict())
        if changed:
            raise CheckpointError(
                f"checkpoint {path} holds optimizer settings that its configuration does not give ({'; '.join(changed[:5])}): it was "
                f"changed after it was written (its checksum detects corruption, not deliberate edits); it was left untouched: "
                f"resume from a checkpoint that train.py wrote with this configuration, or start a new run directory"
            )
        threads = torch.get_num_threads()
        if payload["threads"] != threads and self.env.is_main:
            print(
                f"warning: resuming with {threads} torch thread(s) (trainer.threads) where the checkpoint was written with "
                f"{payload['threads']}: the run continues, but on the CPU it is no longer bit-identical to an uninterrupted "
                f"one (sums are split differently over threads)", file=sys.stderr,
            )
        self._load_state(payload, path)
        self.epoch, self.global_step = payload["epoch"], payload["global_step"]
        self.wall_time, self.history, self.partial = payload["wall_time"], payload["history"], payload["partial"]
        if self.env.is_main:
            inside = f", step {self.partial['step']} of epoch {self.epoch + 1}" if self.partial else ""
            print(f"resumed from {path} after epoch {self.epoch}{inside}")

    def _load_state(self, payload: dict[str, Any], path: Path) -> None:
        """Load each component's state from a checkpoint whose entries have their types
        (:func:`~training.checkpoint.check_entries`); one that does not fit is a :class:`CheckpointError` naming it."""
        loads = (("model", self.model.load_state_dict), ("optimizer", self.optimizer.load_state_dict),
                 ("scheduler", self.scheduler.load_state_dict), ("sign_flips", self.flips.load_state_dict),
                 ("method", self.method.load_state_dict), ("rng", set_rng_state))
        for entry, load in loads:
            try:  # HAM and SAM check what they load (ham/wrapper.py); the others fail on what does not fit
                load(payload[entry])
            except (ValueError, KeyError, TypeError, IndexError, AttributeError, RuntimeError) as error:
                reason = str(error).splitlines()[0] if isinstance(error, ValueError) and str(error) else repr(error)
                raise CheckpointError(
                    f"checkpoint {path} cannot be resumed: its {entry} entry is not this run's ({reason}); it was left untouched: "
                    f"start a new run directory, or resume from a checkpoint that this configuration wrote"
                ) from None

    def _save(self) -> None:
        """Rank 0 writes the checkpoint; if it cannot (a full disk, ...), every rank stops with its message."""
        failure = None
        if self.env.is_main:
            try:
                save_atomic(self._payload(), self.checkpoint_path)
            except CheckpointError as error:
                failure = str(error)
        failure = D.broadcast_from_main(failure, self.env)
        if failure:
            raise CheckpointError(failure)

    def _payload(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sign_flips": self.flips.state_dict(),
            "method": self.method.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "wall_time": self.wall_time,
            "world_size": self.env.world_size,
            "threads": torch.get_num_threads(),
            "history": self.history,
            "partial": self.partial,
            "data": self.data.identity,
            "config": self.config,
            "fingerprint": self.fingerprint,
        }

    def thetas(self) -> list[tuple[str, torch.Tensor]]:
        """The prunable weights θ as the model uses them (merged for reparameterized methods)."""
        with torch.no_grad():
            return [(f"{name}.weight", module.weight) for name, module in self.prunable]

    # -- steps ---------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when ``trainer.amp`` (CPU and CUDA alike, so no loss scaling is needed)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.env.device.type, dtype=self.autocast_dtype)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.env.device, non_blocking=True)
        if x.ndim == 4:
            x = x.contiguous(memory_format=self.memory_format)
        return x, y.to(self.env.device, non_blocking=True)

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            logits = self.net(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.trainer.label_smoothing)
        return loss, logits

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.sam:
            loss, logits = self._forward_loss(x, y)
            loss.backward()
            self.method.before_step(self.global_step)
            self.optimizer.step()
            self.method.after_step(self.global_step)
            self.optimizer.zero_grad(set_to_none=True)
            return loss.detach(), logits.detach()
        # SAM: first pass local (no DDP all-reduce), BatchNorm statistics from the first pass only.
        no_sync = self.net.no_sync() if self.env.distributed else contextlib.nullcontext()
        with no_sync:
            loss, logits = self._forward_loss(x, y)
            loss.backward()
        # Masks apply to both gradients; masks change only with the second, all-reduced one, so
        # that every rank takes the same decision.
        self.method.before_step(self.global_step, update=False)
        self.optimizer.first_step(zero_grad=True)  # type: ignore[attr-defined]
        with frozen_bn_statistics(self.model):
            self._forward_loss(x, y)[0].backward()
        self.method.before_step(self.global_step)
        self.optimizer.second_step(zero_grad=True)  # type: ignore[attr-defined]
        self.method.after_step(self.global_step)
        return loss.detach(), logits.detach()

    def _mean_over_ranks(self, value: torch.Tensor) -> float:
        """A scalar averaged over the ranks (one all-reduce), so that every rank decides the same."""
        if not self.env.distributed:
            return value.item()
        total = value.detach().float().reshape(1).clone()
        D.all_reduce_sum(total, self.env)
        return total.item() / self.env.world_size

    def _check_divergence(self, loss: float) -> None:
        """Stop if the loss is non-finite or exploded past ``trainer.divergence_factor·ln(C)``."""
        limit = self.cfg.trainer.divergence_factor * math.log(self.data.num_classes)
        if math.isfinite(loss) and loss <= limit:
            return
        params = [(n, p) for n, p in self.model.named_parameters()]
        bad = [n for n, p in params if not torch.isfinite(p).all()]
        bad_grad = [n for n, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
        if bad or bad_grad:
            where = f"first non-finite weight: {bad[0]}" if bad else "all weights are still finite"
            if bad_grad:
                where += f"; first non-finite gradient: {bad_grad[0]}"
        else:
            name, weight = max(self.named_weights, key=lambda nw: nw[1].detach().abs().max().item())
            where = f"largest weight entry in layer {name} (|w|max={weight.detach().abs().max().item():.3g})"
        what = f"became {loss}" if not math.isfinite(loss) else f"exploded to {loss:.4g} > {limit:.4g} (trainer.divergence_factor*ln(classes))"
        lr = self.optimizer.param_groups[0]["lr"]
        h = self.cfg.ham
        cause = (
            f"HAM's exponent is lr*alpha*grad (lr={lr:.4g}, ham.alpha={h.alpha:g}): an alpha tuned for another "
            f"setting can blow up here; try a smaller ham.alpha or optimizer.lr"
            if h.enabled
            else f"the learning rate (lr={lr:.4g}) is likely too high for this model"
        )
        raise TrainingDiverged(
            f"loss {what} at step {self.global_step} (epoch {self.epoch + 1}); {where}. Likely cause: {cause}. "
            + self._kept_checkpoint(self.epoch)
        )

    def _check_not_at_chance(self, record: dict[str, Any]) -> None:
        """Stop a run that sits at chance accuracy for a whole epoch after the first one."""
        chance = 1.0 / self.data.num_classes
        if self.epoch >= 2 and record["train_acc"] <= 1.2 * chance and record["train_loss"] >= 0.95 * math.log(self.data.num_classes):
            sparsity = 1 - density(self.thetas())["global"]
            raise TrainingDiverged(
                f"training accuracy is at chance ({100 * record['train_acc']:.2f}%, loss {record['train_loss']:.4f}) "
                f"in epoch {self.epoch}: the network has collapsed. Likely cause: a too large optimizer.lr"
                + (f" or ham.alpha (={self.cfg.ham.alpha:g})" if self.cfg.ham.enabled else "")
                + f", or a sparsity setting that removed too many weights (sparsity now {100 * sparsity:.1f}%). "
                + self._kept_checkpoint(self.epoch - 1)
            )

    def _kept_checkpoint(self, epochs_saved: int) -> str:
        if epochs_saved <= 0:
            return "No checkpoint had been written yet."
        return f"The last good checkpoint ({self.checkpoint_path}, after epoch {epochs_saved}) was kept."

    def train_epoch(self) -> dict[str, float]:
        """One epoch of training (the rest of it, after a stop inside it)."""
        t = self.cfg.trainer
        self.net.train()
        partial = self.partial or {"step": 0, "train_time_s": 0.0, "ranks": [{"loss_sum": 0.0, "correct": 0, "seen": 0}] * self.env.world_size}
        first, sums = partial["step"], partial["ranks"][self.env.rank]  # this rank's running sums
        self.data.train.set_epoch(self.epoch, first)
        device = self.env.device
        loss_sum = torch.tensor(sums["loss_sum"], device=device, dtype=torch.float64)
        correct = torch.tensor(sums["correct"], device=device, dtype=torch.int64)
        seen = sums["seen"]
        console = console_stderr()
        progress = t.progress if t.progress is not None else sys.stdout.isatty() and console.isatty()
        bar = tqdm(total=self.steps_per_epoch, initial=first, desc=f"epoch {self.epoch + 1}/{t.epochs}",
                   disable=not (progress and self.env.is_main), leave=False, dynamic_ncols=True, file=console)
        start = time.perf_counter() - partial["train_time_s"]
        for i, (x, y) in enumerate(self.data.train, start=first):
            if i >= self.steps_per_epoch:
                break
            x, y = self._to_device(x, y)
            loss, logits = self._train_step(x, y)
            self.scheduler.step()
            self.flips.update()
            self.global_step += 1
            if self.global_step % t.finite_check_every == 0:
                self._check_divergence(self._mean_over_ranks(loss))
            loss_sum += loss.double() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            bar.update(1)
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if i + 1 < self.steps_per_epoch:
                self._stop_if_signalled(i + 1, loss_sum, correct, seen, time.perf_counter() - start)
        bar.close()
        self.partial = None
        elapsed = time.perf_counter() - start
        totals = torch.stack([loss_sum, correct.double(), torch.tensor(float(seen), device=device, dtype=torch.float64)])
        D.all_reduce_sum(totals, self.env)
        loss_total, correct_total, n = totals.tolist()
        self._check_divergence(loss_total / n)
        return {"train_loss": loss_total / n, "train_acc": correct_total / n, "images_per_s": n / elapsed, "train_time_s": elapsed}

    def _stop_if_signalled(self, steps_done: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, train_time: float) -> None:
        """After a step: if a rank got SIGUSR1/SIGUSR2/SIGTERM/SIGINT (all ranks agree at the same step), save the
        position inside the epoch and raise :class:`Stopped`."""
        every = self.cfg.trainer.signal_check_every if self.env.distributed else 1
        if self.global_step % every:
            return
        signum = self.stop.agreed(self.env)
        if not signum:
            return
        sums = {"loss_sum": loss_sum.item(), "correct": int(correct.item()), "seen": seen}
        self.partial = {"step": steps_done, "train_time_s": train_time, "ranks": D.gather_objects(sums, self.env)}
        self.wall_time += time.perf_counter() - self._epoch_started
        self._save()
        how = "interrupted by Ctrl-C (SIGINT)" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        raise Stopped(signum, (
            f"{how} after step {steps_done} of epoch {self.epoch + 1} (global step "
            f"{self.global_step}); its position is saved in {self.checkpoint_path}: the same command continues from there"
        ))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        device = self.env.device
        sums = torch.zeros(4, device=device, dtype=torch.float64)  # loss, top-1, top-5, count
        k = min(5, self.data.num_classes)
        for x, y in self.data.test:
            x, y = self._to_device(x, y)
            with self._autocast():
                logits = self.model(x).float()
            top = logits.topk(k, dim=1).indices
            sums += torch.stack([
                F.cross_entropy(logits, y, reduction="sum").double(),
                (top[:, 0] == y).sum().double(),
                (top == y[:, None]).any(1).sum().double(),
                torch.tensor(float(len(y)), device=device, dtype=torch.float64),
            ])
        D.all_reduce_sum(sums, self.env)
        loss, top1, top5, n = sums.tolist()
        return {"test_loss": loss / n, "test_acc": top1 / n, "test_acc5": top5 / n, "test_examples": int(n)}

    # -- the run -------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs. SIGUSR1/SIGUSR2/SIGTERM/SIGINT stop it inside an epoch (:class:`Stopped`,
        with the position saved); ``train.py`` then hands the signal on to the handlers installed before."""
        self.stop.install()
        try:
            summary = self._fit()
        except Stopped:
            raise
        except BaseException:
            self.stop.uninstall()
            raise
        self.stop.uninstall()
        return summary

    def _fit(self) -> dict[str, Any]:
        t = self.cfg.trainer
        if self.epoch >= t.epochs and self.env.is_main:
            print(f"nothing to do: the checkpoint already holds {self.epoch} of trainer.epochs={t.epochs} epochs")
        while self.epoch < t.epochs:
            start = self._epoch_started = time.perf_counter()
            record: dict[str, Any] = {"epoch": self.epoch + 1, "lr": self._epoch_lr()}
            if self.data.resolution_at is not None:
                record["resolution"] = self.data.resolution_at(self.epoch)
            record.update(self.train_epoch())
            self.epoch += 1
            self._check_not_at_chance(record)
            if self.method.prunes_at(self.epoch):  # PILoT/spred: what the final prune costs
                D.average_buffers(self.model, self.env)
                before = self.evaluate()
                record.update(test_acc_before_prune=before["test_acc"], test_loss_before_prune=before["test_loss"])
            self.method.end_epoch(self.epoch, record["train_acc"])
            self.flips.rebase()  # a prune or a Sign-In reset is not a training step's sign flip
            record.update(self.method.metrics())
            D.average_buffers(self.model, self.env)  # the same BatchNorm statistics for evaluation and saving
            if self.epoch % t.eval_every == 0 or self.epoch == t.epochs:
                record.update(self.evaluate())
            dens = density(self.thetas())
            flips = self.flips.read()
            record.update(
                density=dens["global"],
                sparsity=1 - dens["global"],
                layer_density={k: v for k, v in dens.items() if k != "global"},
                sign_flips=flips["total"],
                layer_sign_flips={k: v for k, v in flips.items() if k != "total"},
            )
            self.wall_time += time.perf_counter() - start
            record["wall_time_s"] = self.wall_time
            if self.env.device.type == "cuda":  # this rank's peak since the start (or the resume)
                record["peak_memory_gib"] = torch.cuda.max_memory_allocated(self.env.device) / 2**30
            self.history.append(record)
            self._save()
            self.records.log_epoch(record)
            if self.env.is_main:
                print(self._epoch_line(record))
        return self._summary()

    def _epoch_lr(self) -> float:
        """The learning rate the epoch trains with: the mean over its steps of the schedule's rate at
        each step (a warm-up epoch is not recorded as its first step's rate, 0; a resumed epoch is
        recorded as an uninterrupted one, not as the rate at the resume step)."""
        first = self.epoch * self.steps_per_epoch
        multiplier, peak = self.scheduler.lr_lambdas[0], self.scheduler.base_lrs[0]
        return peak * sum(multiplier(step) for step in range(first, first + self.steps_per_epoch)) / self.steps_per_epoch

    @staticmethod
    def _epoch_line(r: dict[str, Any]) -> str:
        test = f" test_acc={100 * r['test_acc']:.2f}%" if "test_acc" in r else ""
        return (
            f"epoch {r['epoch']}: train_loss={r['train_loss']:.4f} train_acc={100 * r['train_acc']:.2f}%{test} "
            f"lr={r['lr']:.4g} sparsity={100 * r['sparsity']:.2f}% sign_flips={r['sign_flips']} "
            f"{r['images_per_s']:.0f} img/s"
        )

    def _summary(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        evaluated = [h for h in self.history if "test_acc" in h]
        final = evaluated[-1] if evaluated else {}
        summary = {
            "test_acc": final.get("test_acc"),
            "test_acc5": final.get("test_acc5"),
            "test_loss": final.get("test_loss"),
            "test_examples": final.get("test_examples"),
            "train_loss": last.get("train_loss"),
            "train_acc": last.get("train_acc"),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "sparsity": last.get("sparsity"),
            "target": target_of(self.cfg.sparsity),
            "target_missed": missed_target(last.get("sparsity"), target_of(self.cfg.sparsity)),
            **{k: last[k] for k in ("test_acc_before_prune", "pruned_mass_fraction") if k in last},
            "layer_density": last.get("layer_density"),
            "sign_flips": last.get("sign_flips"),
            "sign_flips_total": sum(h["sign_flips"] for h in self.history),
            "wall_time_s": self.wall_time,
            "world_size": self.env.world_size,
            "threads": torch.get_num_threads(),
            "run_dir": str(self.run_dir),
        }
        if self.env.is_main:
            self._export(summary)
        self.records.write_summary(summary)
        return summary

    def _export(self, summary: dict[str, Any]) -> None:
        """``model.safetensors`` + ``model.json``: the trained network as the plain model loads it."""
        cfg, data = self.cfg, self.data
        build = constructor(cfg.model, data.in_channels, data.image_size, data.num_classes)
        export_model(self.run_dir, self.model, {
            "model": cfg.model.name,
            "model_config": OmegaConf.to_container(cfg.model, resolve=True),
            "constructor": build,
            "build": constructor_expression(build),
            "input": dataclasses.asdict(data.input),
            "in_channels": data.in_channels,
            "image_size": data.image_size,
            "num_classes": data.num_classes,
            "data": cfg.data.name,
            "method": cfg.sparsity.method,
            "sign_in": bool(cfg.sparsity.sign_in),
            "ham": bool(cfg.ham.enabled),
            "epochs": self.epoch,
            **{key: summary[key] for key in ("sparsity", "test_acc", "test_acc5")},
            "config_fingerprint": self.fingerprint,
        })

    def close(self, exit_code: int = 0) -> None:
        self.records.close(exit_code)
        self.lock.release()
        D.shutdown(self.env)
