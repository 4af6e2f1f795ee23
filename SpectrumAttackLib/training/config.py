"""Training settings: one validated dataclass, importable without torch.

Field names and defaults are the reference's command-line flags (``seed-flags.md``); ``amp`` is the negation of
``--noamp``. The checks run when the object is built, so a bad combination fails before any data is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from SpectrumAttackLib.checks import check_choice, check_int, check_range

__all__ = ["CHECKPOINT_BEST", "CHECKPOINT_LATEST", "LOG_NAME", "VAL_METRICS", "TrainConfig", "TrainingMode"]

CHECKPOINT_BEST = "model_best.pt"
CHECKPOINT_LATEST = "model_latest.pt"
LOG_NAME = "train_log.csv"
#: The per-case Dice rules of checkpoint selection (:mod:`SpectrumAttackLib.training.validation`); first = default.
VAL_METRICS = ("foreground", "reference")


class TrainingMode(str, Enum):
    """What the model is trained on (seed-algorithms §7.1)."""

    NORMAL = "normal"  # DiceCE(M(X), Y)
    ADVERSARIAL = "adversarial"  # DiceCE(M(X'), Y), X' made on the fly (--adv_training_mode)
    VAFT = "vaft"  # DiceCE(M(X), Y) + DiceCE(M(X'), Y) + L_fr (--adv_training_mode --freq_reg_mode)


@dataclass
class TrainConfig:
    """Settings of one training run.

    Args:
        max_epochs: epochs of the run, ≥ 1 (``--max_epochs``, reference default 5000).
        val_every: validate every this many epochs, ≥ 1; the last epoch is always validated (``--val_every``).
        batch_size: volumes per training batch, ≥ 1 (each may give several crops); used by whoever builds the
            training loader and recorded in checkpoints (``--batch_size``).
        optim_name: ``"adamw"``, ``"adam"`` or ``"sgd"`` (``--optim_name``).
        optim_lr: base learning rate, > 0 (``--optim_lr``).
        reg_weight: weight decay, ≥ 0 (``--reg_weight``).
        momentum: SGD momentum in [0, 1) (``--momentum``).
        lrschedule: ``"warmup_cosine"`` or ``"cosine_anneal"`` (``--lrschedule``).
        warmup_epochs: linear warm-up length in epochs, ≥ 0 (``--warmup_epochs``).
        amp: mixed precision (autocast + gradient scaling); only takes effect on CUDA (``--noamp`` turns it off).
        save_checkpoint: write ``model_best.pt`` and ``model_latest.pt`` into ``save_model_dir``.
        save_model_dir: the run's output folder (checkpoints, ``train_log.csv``); ``None`` writes nothing.
        resume: continue from the checkpoint in ``save_model_dir`` (``model_latest.pt``, or ``model_best.pt``
            with ``resume_best``): weights, optimiser, schedule, scaler, epoch and best metric.
        resume_latest: resume from ``model_latest.pt`` (the default of ``resume``); implies ``resume``.
        resume_best: resume from ``model_best.pt``; implies ``resume``.
        resume_but_restart: load the checkpoint's weights only and start at epoch 0 with a fresh optimiser and
            schedule; implies ``resume``.
        pretrained_path: initialise the weights from this checkpoint and train with a fresh optimiser and
            schedule, as the reference fine-tunes a clean model for VAFT (``--use_pretrained --pretrained_path``).
            Ignored, with a warning, when a run is resumed.
        adv_training_mode: train on adversarial examples made on the fly for every batch (``--adv_training_mode``).
        freq_reg_mode: with ``adv_training_mode``, VAFT: clean + adversarial DiceCE + frequency consistency
            (``--freq_reg_mode``).
        attack_name: registry name of the training attack (``--attack_name``); required with
            ``adv_training_mode``.
        attack_params: keyword parameters of the attack (Lib units as taken by ``attacks.create``; ``eps`` and
            ``std`` on the 0–255 scale). ``seed`` is set per batch by the loop and must not be given.
        roi: ``(x, y, z)`` crop and sliding-window size in voxels (``--roi_x/y/z``).
        infer_overlap: sliding-window overlap in [0, 1) for validation (``--infer_overlap``).
        sw_batch_size: windows per forward pass in validation, ≥ 1 (``--sw_batch_size``).
        val_metric: per-case Dice that selects ``model_best.pt``: ``"foreground"`` (default: organs only, a
            hallucinated organ scores 0) or ``"reference"`` (the reference's Dice incl. background, classes absent
            from the labels skipped); see :mod:`SpectrumAttackLib.training.validation` (``--val_metric``).
        smooth_nr, smooth_dr: DiceCE numerator / denominator smoothing (``--smooth_nr``, ``--smooth_dr``).
        seed: seeds data order, augmentation, attack draws and weight updates; ≥ 0.

    Raises:
        ValueError: a value out of range or an invalid combination, named in the message.
    """

    max_epochs: int = 5000
    val_every: int = 100
    batch_size: int = 1
    optim_name: str = "adamw"
    optim_lr: float = 1e-4
    reg_weight: float = 1e-5
    momentum: float = 0.99
    lrschedule: str = "warmup_cosine"
    warmup_epochs: int = 50
    amp: bool = True
    save_checkpoint: bool = False
    save_model_dir: str | Path | None = None
    resume: bool = False
    resume_latest: bool = False
    resume_best: bool = False
    resume_but_restart: bool = False
    pretrained_path: str | Path | None = None
    adv_training_mode: bool = False
    freq_reg_mode: bool = False
    attack_name: str | None = None
    attack_params: dict[str, Any] = field(default_factory=dict)
    roi: tuple[int, int, int] = (96, 96, 96)
    infer_overlap: float = 0.5
    sw_batch_size: int = 1
    val_metric: str = "foreground"
    smooth_nr: float = 0.0
    smooth_dr: float = 1e-6
    seed: int = 0

    def __post_init__(self) -> None:
        self.max_epochs = check_int("max_epochs", self.max_epochs, 1)
        self.val_every = check_int("val_every", self.val_every, 1)
        self.batch_size = check_int("batch_size", self.batch_size, 1)
        check_choice("optim_name", self.optim_name, ("adamw", "adam", "sgd"))
        self.optim_lr = check_range("optim_lr", self.optim_lr, 0.0, None, low_inclusive=False)
        self.reg_weight = check_range("reg_weight", self.reg_weight, 0.0, None)
        self.momentum = check_range("momentum", self.momentum, 0.0, 1.0, high_inclusive=False)
        check_choice("lrschedule", self.lrschedule, ("warmup_cosine", "cosine_anneal"))
        self.warmup_epochs = check_int("warmup_epochs", self.warmup_epochs, 0)
        self.infer_overlap = check_range("infer_overlap", self.infer_overlap, 0.0, 1.0, high_inclusive=False)
        self.sw_batch_size = check_int("sw_batch_size", self.sw_batch_size, 1)
        check_choice("val_metric", self.val_metric, VAL_METRICS)
        self.smooth_nr = check_range("smooth_nr", self.smooth_nr, 0.0, None)
        self.smooth_dr = check_range("smooth_dr", self.smooth_dr, 0.0, None)
        self.seed = check_int("seed", self.seed, 0)
        self.roi = self._check_roi(self.roi)
        if self.resume_latest and self.resume_best:
            raise ValueError("resume_best must be False when resume_latest is set (pick one checkpoint), got True.")
        self.resume = bool(self.resume or self.resume_latest or self.resume_best or self.resume_but_restart)
        if self.freq_reg_mode and not self.adv_training_mode:
            raise ValueError(
                "freq_reg_mode must be False unless adv_training_mode is set (--freq_reg_mode needs "
                "--adv_training_mode), got True."
            )
        if self.adv_training_mode and self.attack_name is None:
            raise ValueError("attack_name must name a registered attack when adv_training_mode is set, got None.")
        if not isinstance(self.attack_params, dict):
            raise TypeError(f"attack_params must be a dict, got {type(self.attack_params).__name__}.")
        if "seed" in self.attack_params:
            raise ValueError(
                f"attack_params must not contain 'seed' (the loop seeds every batch from seed), "
                f"got {self.attack_params['seed']!r}."
            )
        if (self.save_checkpoint or self.resume) and self.save_model_dir is None:
            flag = "save_checkpoint" if self.save_checkpoint else "resume"
            raise ValueError(f"save_model_dir must be a folder when {flag} is set, got None.")

    @staticmethod
    def _check_roi(roi: Any) -> tuple[int, int, int]:
        if isinstance(roi, (str, bytes)) or not hasattr(roi, "__len__") or len(roi) != 3:
            raise ValueError(f"roi must be three positive integers (x, y, z), got {roi!r}.")
        return tuple(check_int(f"roi[{i}]", v, 1) for i, v in enumerate(roi))  # type: ignore[return-value]

    @property
    def mode(self) -> TrainingMode:
        """Normal, adversarial or VAFT training, from the two flags."""
        if not self.adv_training_mode:
            return TrainingMode.NORMAL
        return TrainingMode.VAFT if self.freq_reg_mode else TrainingMode.ADVERSARIAL

    @property
    def resume_checkpoint(self) -> str:
        """File name of the checkpoint a resumed run starts from."""
        return CHECKPOINT_BEST if self.resume_best else CHECKPOINT_LATEST

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (paths as strings), for checkpoints loaded with ``weights_only=True`` and JSON."""
        out = asdict(self)
        for key in ("save_model_dir", "pretrained_path"):
            out[key] = None if out[key] is None else str(out[key])
        out["roi"] = list(self.roi)
        out["attack_params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.attack_params.items()}
        out["mode"] = self.mode.value
        return out
