"""Per-voxel segmentation losses an attack can maximise, chosen by name (the ``loss`` parameter).

``dice-ce`` is the reference's DiceCE (:func:`~SpectrumAttackLib.attacks.losses.dice_ce_loss`, the default). The
others are the losses of SEA (Croce, Singh, Hein, "Towards Reliable Evaluation and Fast Training of Robust Semantic
Segmentation Models", ECCV 2024; ``nmndeep/Robust-Segmentation`` ``semseg/attacker.py``), written for volumes:

``ce``
    voxel cross-entropy, mean over voxels.
``masked-ce`` (SEA's L_MCE)
    cross-entropy of the voxels the model still classifies correctly; the mask ``argmax(logits) == label`` is
    recomputed from the logits at every call and carries no gradient. The sum is divided by *all* voxels of the
    volume, as SEA's code does (``mean`` over pixels of the masked map), not by the number still correct: the
    division by a count that shrinks as voxels are fooled would inflate the loss of nearly fooled volumes.
``balanced-masked-ce`` (SEA's L_MCE-Bal)
    ``masked-ce`` with each voxel weighted by its class's weight :func:`class_weights`, computed from each volume's
    own label histogram (SEA hard-codes weights of PASCAL-VOC and ADE20K; a medical label set needs its own).
``js`` (SEA's L_JS)
    Jensen–Shannon divergence between ``softmax(logits)`` and the one-hot label, summed over classes, mean over
    voxels. Bounded by log 2 per voxel, so fooled voxels saturate instead of dominating.

Every loss maps ``(logits [B, K, H, W, D], labels [B, 1, H, W, D] int64)`` to a scalar: the mean over the batch of
each volume's loss (:func:`per_volume` gives the ``[B]`` vector). An attack's sign step on one volume does not
depend on the other volumes of the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from SpectrumAttackLib.attacks.losses import LossFn, dice_ce_loss
from SpectrumAttackLib.attacks.parameters import LOSS_NAMES
from SpectrumAttackLib.checks import check_choice

__all__ = ["LOSSES", "SEA_LOSSES", "class_weights", "js_divergence", "loss_function", "per_volume"]

#: the loss names of the ``loss`` parameter, the default first.
LOSSES: tuple[str, ...] = LOSS_NAMES
#: the three losses of SEA's ensemble, in its order.
SEA_LOSSES: tuple[str, ...] = ("masked-ce", "balanced-masked-ce", "js")


def class_weights(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-volume class weights from the volume's own label histogram: ``n / (k · n_c)`` for a class with ``n_c``
    voxels among the ``k`` classes present, 0 for an absent class (each present class then carries the same total
    weight, as a class-balanced loss intends).

    Shape:
        labels: ``[B, 1, H, W, D]`` int64; returns ``[B, K]`` of ``dtype``.
    """
    counts = F.one_hot(labels.flatten(1), num_classes).sum(1).to(dtype)  # [B, K]
    present = (counts > 0).sum(1, keepdim=True).float()
    total = counts.sum(1, keepdim=True)
    return torch.where(counts > 0, total / (present * counts.clamp_min(1)), torch.zeros_like(counts))


def _ce_map(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels[:, 0], reduction="none")  # [B, H, W, D]


def _still_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.detach().argmax(1) == labels[:, 0]).float()


def js_divergence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence of ``softmax(logits)`` to the one-hot labels per voxel (natural log), ``[B, H, W,
    D]``: ``½ Σ_c p_c log(p_c / m_c) + ½ log(1 / m_y)`` with ``m = (p + onehot(y)) / 2``.

    Against a one-hot target it depends on ``q = p_y`` only (for ``c ≠ y``, ``m_c = p_c / 2``):
    ``½ [(1 − q) log 2 + q log(2q / (1 + q)) + log(2 / (1 + q))]``, with ``q = exp(−CE)``; so it costs one
    cross-entropy, no one-hot map.
    """
    q = torch.exp(-_ce_map(logits, labels))
    log_two = torch.log(torch.tensor(2.0, dtype=q.dtype, device=q.device))
    return ((1 - q) * log_two + torch.xlogy(q, 2 * q / (1 + q)) + torch.log(2 / (1 + q))) / 2


def _voxel_map(name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if name == "ce":
        return _ce_map(logits, labels)
    if name == "js":
        return js_divergence(logits, labels)
    masked = _ce_map(logits, labels) * _still_correct(logits, labels)
    if name == "masked-ce":
        return masked
    weights = class_weights(labels, logits.shape[1], logits.dtype)  # balanced-masked-ce
    return masked * weights.gather(1, labels.flatten(1)).view_as(masked)


def per_volume(name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Loss ``name`` (not ``dice-ce``) of each volume, ``[B]``: the mean of its voxel map over the volume."""
    return _voxel_map(name, logits, labels).flatten(1).mean(1)


def loss_function(name: str) -> LossFn:
    """The loss called ``name`` (one of :data:`LOSSES`) as ``(logits, labels) → scalar``.

    Raises:
        ValueError: an unknown name (the message lists :data:`LOSSES`).
    """
    check_choice("loss", name, LOSSES)
    if name == "dice-ce":
        return dice_ce_loss()
    function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = \
        lambda logits, labels: per_volume(name, logits, labels).mean()  # noqa: E731
    function.__name__ = name.replace("-", "_")
    return function
