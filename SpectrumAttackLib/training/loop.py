"""The training loop: normal, adversarial or VAFT training with validation, checkpoints and exact resume.

Departures from the reference trainer (``trainer.py``, seed-algorithms §7 and §13), on purpose:

- the best model is chosen on the mean Dice over *all* validation cases, with fresh metric state every time
  (§13 item 7), and the last epoch is always validated;
- ``--resume`` works (§13 item 4): checkpoints hold the optimiser, schedule, scaler, epoch and best metric, and
  every epoch is seeded from ``(seed, epoch)``, so a resumed run repeats the epochs of an uninterrupted one;
- every random draw is seeded (§13 item 24); attacks get one seed per batch;
- mixed precision is one setting, ``precision`` (``SpectrumAttackLib.precision``), instead of CUDA-only AMP:
  ``auto`` trains in bf16 on CPUs with AMX/AVX512-BF16 and on CUDA GPUs with bf16, fp32 elsewhere; only the model
  passes run under autocast, the losses stay float32; fp16 (CUDA only) adds a gradient scaler.

The same loop drives ``workflows.harden`` (fine-tuning on cases held in memory): there an "epoch" is one optimiser
step over one batch of crops (``unit="iteration"``), ``should_stop`` is polled before every batch, and the progress
messages carry the estimated time left.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.inference.tiles import Cancelled
from SpectrumAttackLib.models.checkpoints import load_checkpoint, save_checkpoint
from SpectrumAttackLib.precision import Precision, resolve_precision
from SpectrumAttackLib.runtime import Progress, ProgressCallback, resolve_device
from SpectrumAttackLib.training.config import CHECKPOINT_BEST, CHECKPOINT_LATEST, LOG_NAME, TrainConfig, TrainingMode
from SpectrumAttackLib.training.log import TrainLog
from SpectrumAttackLib.training.objectives import adversarial_examples, training_loss
from SpectrumAttackLib.training.schedules import make_optimizer, make_scheduler
from SpectrumAttackLib.training.seeding import attack_seed, seed_epoch
from SpectrumAttackLib.training.validation import as_plain_tensor, validate

__all__ = ["EpochRecord", "TrainConfig", "TrainResult", "train", "unwrap_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did (one row of ``train_log.csv``).

    Attributes:
        epoch: epochs completed after this one (1-based).
        loss: mean training loss over the epoch's batches (this rank's batches).
        loss_clean, loss_adversarial, loss_freq: means of the loss terms (``None`` where the mode has none).
        lr: learning rate used during the epoch.
        val_dice: mean validation Dice over all cases (rule ``config.val_metric``), ``None`` when not validated.
        seconds: wall-clock time of the epoch including validation.
    """

    epoch: int
    loss: float
    loss_clean: float | None
    loss_adversarial: float | None
    loss_freq: float | None
    lr: float
    val_dice: float | None
    seconds: float


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        best_metric: best mean validation Dice so far (including epochs before a resume); NaN if never validated.
        best_epoch: epoch of ``best_metric`` (1-based), ``None`` if never validated.
        last_epoch: epochs completed in total.
        history: the epochs run by this call.
        best_path, latest_path: checkpoint files written (``None`` without ``save_checkpoint``).
        seconds: wall-clock time of the call.
    """

    best_metric: float
    best_epoch: int | None
    last_epoch: int
    history: list[EpochRecord] = field(default_factory=list)
    best_path: Path | None = None
    latest_path: Path | None = None
    seconds: float = 0.0


def unwrap_model(model: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (else ``model`` itself)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


class _TrainerState:
    """Optimiser, schedule, scaler and counters of a run, with checkpoint round trips."""

    def __init__(self, model: nn.Module, config: TrainConfig, precision: Precision) -> None:
        self.config = config
        self.optimizer = make_optimizer(config.optim_name, model.parameters(), lr=config.optim_lr,
                                        reg_weight=config.reg_weight, momentum=config.momentum)
        self.scheduler = make_scheduler(config.lrschedule, self.optimizer, warmup_epochs=config.warmup_epochs,
                                        max_epochs=config.max_epochs)
        # Loss scaling guards fp16's narrow exponent; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(precision.device_type, enabled=precision.name == "fp16")
        self.precision = precision
        self.epoch = 0
        self.best_metric = math.nan
        self.best_epoch: int | None = None

    def checkpoint_extra(self) -> dict[str, Any]:
        """Everything but the weights, in plain types (``weights_only`` loading)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "config": self.config.to_dict(),
            "precision_used": self.precision.name,
            "seed": self.config.seed,
        }

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        """Continue from ``checkpoint``; the schedule's shape stays that of the current configuration.

        Raises:
            ValueError: the checkpoint's best metric was scored by another ``val_metric`` rule.
        """
        saved_metric = checkpoint.get("config", {}).get("val_metric", "foreground")
        if saved_metric != self.config.val_metric:
            raise ValueError(
                f"val_metric must be {saved_metric!r} to resume this run (its best checkpoint was selected by that "
                f"rule and the scores are not comparable), got {self.config.val_metric!r}."
            )
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        # Recompute this epoch's LR under the current schedule (max_epochs may have been raised for the resume).
        self.scheduler.last_epoch -= 1
        self.scheduler.step()
        if self.scaler.is_enabled() and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.epoch = int(checkpoint["epoch"])
        self.best_metric = float(checkpoint["best_metric"])
        self.best_epoch = checkpoint.get("best_epoch")

    def improve(self, metric: float) -> bool:
        """Record ``metric`` for the current epoch; whether it is a new best."""
        if math.isnan(metric) or (self.best_epoch is not None and metric <= self.best_metric):
            return False
        self.best_metric, self.best_epoch = metric, self.epoch
        return True


def _load_initial_weights(core: nn.Module, config: TrainConfig, device: torch.device) -> Mapping[str, Any] | None:
    """Load resume or pretrained weights into ``core``; return the checkpoint to continue from, if any."""
    if config.resume:
        path = Path(config.save_model_dir) / config.resume_checkpoint  # TrainConfig requires the folder
        if not path.is_file():
            raise FileNotFoundError(f"--resume needs a checkpoint at {path}, but there is none.")
        if config.pretrained_path:
            warnings.warn(f"pretrained_path {config.pretrained_path} is ignored: resuming from {path}.", stacklevel=3)
        load_checkpoint(core, path, strict=True)
        if config.resume_but_restart:
            logger.info("Loaded weights of %s; restarting at epoch 0.", path)
            return None
        logger.info("Resuming from %s.", path)
        return torch.load(path, map_location=device, weights_only=True)
    if config.pretrained_path:
        load_checkpoint(core, config.pretrained_path)
        logger.info("Fine-tuning from %s with a fresh optimiser and schedule.", config.pretrained_path)
    return None


def _batch_tensors(batch: Mapping[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images = as_plain_tensor(batch["image"]).to(device=device, dtype=torch.float32)
    labels = as_plain_tensor(batch["label"]).to(device=device).long()
    return images, labels


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def train(
    model: nn.Module,
    train_loader: Iterable[Mapping[str, Any]],
    val_cases: Iterable[Mapping[str, Any]],
    config: TrainConfig,
    *,
    device: torch.device | str | None = None,
    progress: ProgressCallback | None = None,
    rank: int = 0,
    world_size: int = 1,
    should_stop: Callable[[], bool] | None = None,
    unit: str = "epoch",
) -> TrainResult:
    """Train ``model`` as configured: normal, adversarial (``adv_training_mode``) or VAFT (+ ``freq_reg_mode``).

    Per epoch: seed the epoch, one pass over ``train_loader`` (adversarial examples made per batch against the
    current weights, model in eval mode during the attack), one schedule step; every ``val_every`` epochs and at
    the last epoch, sliding-window validation on the whole ``val_cases`` volumes. With ``save_checkpoint``, rank 0
    writes ``model_latest.pt`` at each validation and ``model_best.pt`` when the mean Dice improves, atomically;
    both hold ``state_dict``, ``optimizer``, ``scheduler``, ``scaler``, ``epoch``, ``best_metric``, ``best_epoch``,
    ``config`` (with the ``precision`` asked for), ``precision_used`` (``"fp32"``, ``"bf16"`` or ``"fp16"``) and
    ``seed``. With ``save_model_dir``, rank 0 appends a row per epoch to ``train_log.csv``.

    Args:
        model: the network (possibly wrapped in ``DistributedDataParallel`` by the caller); moved to ``device``.
        train_loader: a sized iterable of batches ``{"image": [B, C, *roi], "label": [B, 1, *roi]}``, usually a
            ``DataLoader`` (its sampler, worker seeds and MONAI transforms are seeded per epoch).
        val_cases: an iterable of whole cases ``{"image": [1, C, H, W, D], "label": [1, 1, H, W, D]}``.
        config: the run's settings.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... (default ``"auto"``).
        progress: called after every batch with ``Progress(done, total, "train", message)``; the message names
            the epoch, the batch's loss and the estimated time left, and after each validation its mean Dice.
        rank, world_size: this process in a distributed run (only rank 0 writes files; validation cases are
            shared out and the Dice all-reduced when ``world_size`` > 1).
        should_stop: polled before every batch; returning True stops the run with ``Cancelled`` (the
            checkpoints already written stay as they are).
        unit: what one pass over ``train_loader`` is called in progress messages (``"iteration"`` when the loader
            yields one batch per pass, as ``workflows.harden``'s does).

    Returns:
        the best metric and epoch, the epochs run and the checkpoint paths.

    Raises:
        ValueError: an empty training loader, or bad settings (from the config, optimiser or attack).
        FileNotFoundError: ``resume`` without a checkpoint in ``save_model_dir``.
        Cancelled: ``should_stop()`` returned True.

    Example:
        >>> config = TrainConfig(max_epochs=2, val_every=1, roi=(32, 32, 32), warmup_epochs=0)
        >>> result = train(model, train_loader, val_cases, config, device="cpu")
    """
    start = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}.")
    device = resolve_device(device)
    model.to(device)
    core = unwrap_model(model)
    run_dir = None if config.save_model_dir is None else Path(config.save_model_dir)
    writer = rank == 0
    precision = resolve_precision(config.precision, device)
    logger.info("Model passes in %s (%s).", precision.name, precision.reason)
    checkpoint = _load_initial_weights(core, config, device)
    state = _TrainerState(model, config, precision)
    if checkpoint is not None:
        state.restore(checkpoint)
    log = TrainLog(run_dir / LOG_NAME, keep_up_to=state.epoch if config.resume else None) \
        if writer and run_dir is not None else None
    loss_fn = dice_ce_loss(config.smooth_nr, config.smooth_dr)
    batches = len(train_loader) if isinstance(train_loader, Sized) else 0
    if batches == 0:
        raise ValueError(f"train_loader must yield at least one batch, got {train_loader!r} of length 0.")
    total = batches * (config.max_epochs - state.epoch)
    result = TrainResult(best_metric=state.best_metric, best_epoch=state.best_epoch, last_epoch=state.epoch)
    if run_dir is not None and config.save_checkpoint:
        result.latest_path, result.best_path = run_dir / CHECKPOINT_LATEST, run_dir / CHECKPOINT_BEST
    done = 0
    for epoch in range(state.epoch, config.max_epochs):
        epoch_start = time.perf_counter()
        seed_epoch(train_loader, config.seed, epoch, rank)
        model.train()
        lr = float(state.optimizer.param_groups[0]["lr"])
        terms: dict[str, list[float | None]] = {}
        for iteration, batch in enumerate(train_loader):
            if should_stop is not None and should_stop():
                raise Cancelled(f"training cancelled in {unit} {epoch + 1}")
            images, labels = _batch_tensors(batch, device)
            adversarial = None
            if config.mode is not TrainingMode.NORMAL:
                adversarial = adversarial_examples(
                    config.attack_name, core, images, labels,
                    seed=attack_seed(config.seed, epoch, iteration, rank), params=config.attack_params,
                    precision=config.precision,
                )
            loss = training_loss(config.mode, model, images, labels, loss_fn, adversarial, precision)
            state.optimizer.zero_grad(set_to_none=True)
            state.scaler.scale(loss.total).backward()
            state.scaler.step(state.optimizer)
            state.scaler.update()
            for key, value in loss.as_floats().items():
                terms.setdefault(key, []).append(value)
            done += 1
            if progress is not None:
                left = _time_left(time.perf_counter() - start, done, total)
                progress(Progress(done, total, "train", f"{unit} {epoch + 1}/{config.max_epochs} loss "
                                                        f"{terms['loss'][-1]:.4f}, {left}"))
        state.scheduler.step()
        state.epoch = epoch + 1
        val_dice = None
        improved = False
        if state.epoch % config.val_every == 0 or state.epoch == config.max_epochs:
            val_dice = _validate(model, val_cases, config, precision, rank, world_size)
            improved = state.improve(val_dice)
        record = EpochRecord(
            epoch=state.epoch, loss=_mean(terms["loss"]), loss_clean=_mean(terms["loss_clean"]),
            loss_adversarial=_mean(terms["loss_adversarial"]), loss_freq=_mean(terms["loss_freq"]), lr=lr,
            val_dice=val_dice, seconds=time.perf_counter() - epoch_start,
        )
        result.history.append(record)
        # Log first, then checkpoints: a run stopped in between resumes from the previous checkpoint and drops
        # the log rows after it.
        if log is not None:
            log.append(vars(record))
        if val_dice is not None and writer and result.latest_path is not None:
            _save(result.latest_path, core, state)
            if improved:
                _save(result.best_path, core, state)
        logger.info("epoch %d/%d loss %.4f lr %.3g%s", state.epoch, config.max_epochs, record.loss, lr,
                    "" if val_dice is None else f" val Dice {val_dice:.4f}")
        if progress is not None and val_dice is not None:
            progress(Progress(done, total, "train", f"{unit} {state.epoch}: validation Dice {val_dice:.4f}"))
    result.best_metric, result.best_epoch, result.last_epoch = state.best_metric, state.best_epoch, state.epoch
    if result.best_path is not None and not result.best_path.is_file():
        result.best_path = None
    result.seconds = time.perf_counter() - start
    return result


def _time_left(elapsed: float, done: int, total: int) -> str:
    """``"ETA 3 min"``: the time left if the remaining batches take as long as the finished ones (validation
    included)."""
    seconds = elapsed / max(done, 1) * max(total - done, 0)
    return f"ETA {seconds:.0f} s" if seconds < 90 else f"ETA {seconds / 60:.0f} min"


def _validate(model: nn.Module, val_cases: Iterable[Mapping[str, Any]], config: TrainConfig, precision: Precision,
              rank: int, world_size: int) -> float:
    # The bare network: ranks validate different numbers of cases, so no DDP forward (which may sync buffers).
    outcome = validate(unwrap_model(model), val_cases, roi=config.roi, overlap=config.infer_overlap,
                       sw_batch_size=config.sw_batch_size, precision=precision, rank=rank,
                       world_size=world_size, metric=config.val_metric)
    if world_size > 1:
        outcome.all_reduce()
    if float(outcome.count) == 0:
        warnings.warn("val_cases is empty: no validation Dice, so model_best.pt is never written.", stacklevel=3)
    return outcome.mean_dice


def _save(path: Path, core: nn.Module, state: _TrainerState) -> None:
    save_checkpoint(path, core, **state.checkpoint_extra())
