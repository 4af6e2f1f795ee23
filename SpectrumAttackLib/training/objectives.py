"""Training objectives: normal, adversarial and VAFT (seed-algorithms §7.1).

- normal: ``L = DiceCE(M(X), Y)``;
- adversarial: ``L = DiceCE(M(X'), Y)``, with ``X'`` made by any registered attack on the fly for every batch
  against the current weights (the attack puts the model in eval mode and restores its modes);
- VAFT: ``L = DiceCE(M(X), Y) + DiceCE(M(X'), Y) + L_fr`` with the frequency-consistency term
  ``L_fr = Σ|Z(M(X)) − Z(M(X'))| / Σ|Z(M(X))|``, ``Z`` the orthonormal 3D DCT of the logits over the whole crop,
  per sample and class channel, summed over the batch; no stop-gradient on either branch (``trainer.py::
  train_epoch_freq_reg`` of the reference; the VAFA paper's Eq. 4 is the un-normalised L1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.base import forward_logits
from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.precision import Precision, resolve_precision
from SpectrumAttackLib.training.config import TrainingMode
from SpectrumAttackLib.transforms import dct_nd

__all__ = ["LossTerms", "adversarial_examples", "frequency_consistency_loss", "training_loss"]


@dataclass(frozen=True)
class LossTerms:
    """The loss to minimise and its parts (``None`` where a mode has no such term).

    Attributes:
        total: scalar with gradient.
        clean: ``DiceCE(M(X), Y)`` (normal and VAFT).
        adversarial: ``DiceCE(M(X'), Y)`` (adversarial and VAFT).
        freq: ``L_fr`` (VAFT).
    """

    total: torch.Tensor
    clean: torch.Tensor | None = None
    adversarial: torch.Tensor | None = None
    freq: torch.Tensor | None = None

    def as_floats(self) -> dict[str, float | None]:
        """Detached values for logging."""
        return {
            name: None if value is None else float(value.detach())
            for name, value in (("loss", self.total), ("loss_clean", self.clean),
                                ("loss_adversarial", self.adversarial), ("loss_freq", self.freq))
        }


def frequency_consistency_loss(clean_logits: torch.Tensor, adversarial_logits: torch.Tensor) -> torch.Tensor:
    """``L_fr = Σ|Z(clean) − Z(adv)| / Σ|Z(clean)|`` with ``Z`` the orthonormal 3D DCT over ``H, W, D``.

    Computed in float32 (logits from autocast are cast up first), outside any autocast region. Zero when both
    inputs are equal; gradients flow into both arguments.

    Shape:
        clean_logits, adversarial_logits: ``[B, K, H, W, D]``; returns a scalar.
    """
    if clean_logits.shape != adversarial_logits.shape or clean_logits.dim() != 5:
        raise ValueError(
            f"adversarial_logits must have the shape [B, K, H, W, D] of clean_logits {list(clean_logits.shape)}, "
            f"got {list(adversarial_logits.shape)}."
        )
    z_clean = dct_nd(clean_logits.float(), 3)
    z_adv = dct_nd(adversarial_logits.float(), 3)
    return (z_clean - z_adv).abs().sum() / z_clean.abs().sum().clamp_min(torch.finfo(torch.float32).tiny)


def adversarial_examples(
    attack_name: str,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    seed: int,
    params: dict[str, Any] | None = None,
    precision: str = "auto",
) -> torch.Tensor:
    """``X' = attack(X, Y)`` against the current weights, detached.

    The attack is built for this batch with its own ``seed`` (so runs are reproducible and every batch draws
    fresh random starts), the training run's ``precision`` and ``clip_input=True``: intensity augmentation can push
    training crops outside [0, 1], and the reference attacks clamp their output to [0, 1] anyway. The attack base
    switches the model to eval mode with frozen parameters and restores both afterwards.

    Shape:
        images: ``[B, C, H, W, D]``; labels: ``[B, 1, H, W, D]``; returns ``[B, C, H, W, D]``.
    """
    kwargs: dict[str, Any] = {"clip_input": True, **(params or {}), "seed": int(seed), "precision": precision}
    attack = attacks.create(attack_name, model, **kwargs)
    return attack(images, labels).adversarial.detach()


def training_loss(
    mode: TrainingMode,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    loss_fn: LossFn,
    adversarial_images: torch.Tensor | None = None,
    precision: Precision | None = None,
) -> LossTerms:
    """The loss of one batch in ``mode``: only the model passes run under ``precision``, the losses in float32.

    Args:
        mode: normal, adversarial or VAFT.
        model: the network in training mode.
        images: clean crops ``[B, C, H, W, D]``.
        labels: ``[B, 1, H, W, D]`` class maps.
        loss_fn: the segmentation loss (the reference's DiceCE).
        adversarial_images: ``X'`` of the same shape, required in the adversarial and VAFT modes.
        precision: of the model passes, resolved for the model's device; ``None`` is fp32.

    Raises:
        ValueError: ``adversarial_images`` missing in an adversarial mode.
    """
    mode = TrainingMode(mode)
    precision = precision or resolve_precision("fp32", images.device)

    def logits(x: torch.Tensor) -> torch.Tensor:
        return forward_logits(model, x, precision)

    if mode is TrainingMode.NORMAL:
        clean = loss_fn(logits(images), labels)
        return LossTerms(total=clean, clean=clean)
    if adversarial_images is None:
        raise ValueError(f"adversarial_images must be given in {mode.value} training, got None.")
    if mode is TrainingMode.ADVERSARIAL:
        adv = loss_fn(logits(adversarial_images), labels)
        return LossTerms(total=adv, adversarial=adv)
    clean_logits = logits(images)
    adv_logits = logits(adversarial_images)
    clean = loss_fn(clean_logits, labels)
    adv = loss_fn(adv_logits, labels)
    freq = frequency_consistency_loss(clean_logits, adv_logits)
    return LossTerms(total=clean + adv + freq, clean=clean, adversarial=adv, freq=freq)
