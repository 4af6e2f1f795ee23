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

Inside an attack loop the same labels come back at every step: :class:`VoxelLoss` (what :func:`loss_function`
returns) computes the voxel weights of ``balanced-masked-ce`` once per labels tensor, and keeps the per-volume
cross-entropy of its last logits for APGD's step-size bookkeeping (:meth:`VoxelLoss.cross_entropy`), so that the
step runs one softmax, not two. Both give the values of a fresh computation (tests check equality).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F

from SpectrumAttackLib.attacks.losses import LossFn, class_map, dice_ce_loss
from SpectrumAttackLib.attacks.parameters import LOSS_NAMES
from SpectrumAttackLib.checks import check_choice

__all__ = ["LOSSES", "SEA_LOSSES", "VoxelLoss", "class_weights", "js_divergence", "loss_function", "per_volume"]

#: the loss names of the ``loss`` parameter, the default first.
LOSSES: tuple[str, ...] = LOSS_NAMES
#: the three losses of SEA's ensemble, in its order.
SEA_LOSSES: tuple[str, ...] = ("masked-ce", "balanced-masked-ce", "js")


def class_weights(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-volume class weights from the volume's own label histogram: ``n / (k · n_c)`` for a class with ``n_c``
    voxels among the ``k`` classes present, 0 for an absent class (each present class then carries the same total
    weight, as a class-balanced loss intends).

    Shape:
        labels: ``[B, 1, H, W, D]`` int64 in ``[0, K)``; returns ``[B, K]`` of ``dtype``.
    """
    batch = labels.shape[0]
    offset = torch.arange(batch, device=labels.device).unsqueeze(1) * num_classes
    counts = torch.bincount((labels.reshape(batch, -1) + offset).reshape(-1), minlength=batch * num_classes)
    counts = counts.reshape(batch, num_classes).to(dtype)
    present = (counts > 0).sum(1, keepdim=True).to(dtype)
    total = counts.sum(1, keepdim=True)
    return torch.where(counts > 0, total / (present * counts.clamp_min(1)), torch.zeros_like(counts))


def _voxel_weights(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Each voxel's class weight (:func:`class_weights` of its volume), ``[B, H, W, D]``."""
    weights = class_weights(labels, num_classes, dtype)
    return weights.gather(1, labels.flatten(1)).view(labels.shape[0], *labels.shape[2:])


def _ce_map(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels[:, 0], reduction="none")  # [B, H, W, D]


def _still_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (class_map(logits) == labels)[:, 0].to(logits.dtype)


def _js_from_ce(ce: torch.Tensor) -> torch.Tensor:
    """:func:`js_divergence` from the voxel cross-entropy map ``ce = −log q``."""
    q = torch.exp(-ce)
    return (q * ce + (1 + q) * torch.log1p(q)).mul_(-0.5).add_(math.log(2.0))


def js_divergence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence of ``softmax(logits)`` to the one-hot labels per voxel (natural log), ``[B, H, W,
    D]``: ``½ Σ_c p_c log(p_c / m_c) + ½ log(1 / m_y)`` with ``m = (p + onehot(y)) / 2``.

    Against a one-hot target it depends on ``q = p_y`` only (for ``c ≠ y``, ``m_c = p_c / 2``):
    ``½ [(1 − q) log 2 + q log(2q / (1 + q)) + log(2 / (1 + q))] = log 2 − ½ [q·CE + (1 + q) log(1 + q)]`` with
    ``q = exp(−CE)``; so it costs one cross-entropy and a few passes, no one-hot map.
    """
    return _js_from_ce(_ce_map(logits, labels))


def _voxel_map(name: str, logits: torch.Tensor, labels: torch.Tensor, ce: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """The voxel map of loss ``name`` given the cross-entropy map ``ce`` (and, for the balanced loss, the voxel
    weights, computed here when not given)."""
    if name == "ce":
        return ce
    if name == "js":
        return _js_from_ce(ce)
    masked = ce * _still_correct(logits, labels)
    if name == "masked-ce":
        return masked
    if weights is None:  # balanced-masked-ce
        weights = _voxel_weights(labels, logits.shape[1], logits.dtype)
    return masked * weights


def per_volume(name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Loss ``name`` (not ``dice-ce``) of each volume, ``[B]``: the mean of its voxel map over the volume."""
    return _voxel_map(name, logits, labels, _ce_map(logits, labels)).flatten(1).mean(1)


class _TensorKey:
    """Names one tensor's current values without keeping it alive: a weak reference, its storage and version.

    While the referenced tensor lives its storage cannot be reused, so a tensor that shares storage, shape and
    version with it (``logits.detach()``, or the tensor itself) holds the same values.
    """

    def __init__(self, tensor: torch.Tensor, on_release: Callable[[], None] | None = None) -> None:
        self._ref = weakref.ref(tensor, None if on_release is None else lambda _: on_release())
        self._signature = self._of(tensor)

    @staticmethod
    def _of(tensor: torch.Tensor) -> tuple:
        return (tensor.data_ptr(), tensor._version, tuple(tensor.shape), tensor.stride(), tensor.dtype, tensor.device)

    def matches(self, tensor: torch.Tensor) -> bool:
        return self._ref() is not None and self._of(tensor) == self._signature


class VoxelLoss:
    """Loss ``name`` of :data:`LOSSES` (not ``dice-ce``) as ``(logits, labels) → scalar``: the mean over the batch of
    :func:`per_volume`, with what the steps of an attack share computed once (module docstring).

    Args:
        name: ``"ce"``, ``"masked-ce"``, ``"balanced-masked-ce"`` or ``"js"``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = name.replace("-", "_")
        self._weights: tuple[_TensorKey, torch.Tensor, object] | None = None
        self._ce: tuple[_TensorKey, _TensorKey, torch.Tensor] | None = None

    def __repr__(self) -> str:
        return f"VoxelLoss({self.name!r})"

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ce = _ce_map(logits, labels)
        weights = self._voxel_weights(logits, labels) if self.name == "balanced-masked-ce" else None
        per_volume_ce = ce.detach().flatten(1).mean(1)
        self._ce = (_TensorKey(logits), _TensorKey(labels), per_volume_ce)
        return _voxel_map(self.name, logits, labels, ce, weights).flatten(1).mean(1).mean()

    def _voxel_weights(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The voxel weights of ``labels``, cached until these labels are freed (the attack call has ended) or
        other labels come (the cache keeps no reference to the labels, and its release callback none to the loss)."""
        cached = self._weights
        if cached is not None and cached[0].matches(labels) and cached[1].dtype == logits.dtype:
            return cached[1]
        this, token = weakref.ref(self), object()

        def forget() -> None:
            loss = this()
            if loss is not None and loss._weights is not None and loss._weights[2] is token:
                loss._weights = None

        weights = _voxel_weights(labels, logits.shape[1], logits.dtype)
        self._weights = (_TensorKey(labels, forget), weights, token)
        return weights

    def cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Voxel-mean cross-entropy of each volume ``[B]``, without gradient; the last call's when it had these
        logits (or a detached view of them) and labels, else computed."""
        if self._ce is not None and self._ce[0].matches(logits) and self._ce[1].matches(labels):
            return self._ce[2]
        return _ce_map(logits.detach(), labels).flatten(1).mean(1)


def loss_function(name: str) -> LossFn:
    """The loss called ``name`` (one of :data:`LOSSES`) as ``(logits, labels) → scalar``: a :class:`VoxelLoss`, or
    MONAI's DiceCE for ``"dice-ce"``.

    Raises:
        ValueError: an unknown name (the message lists :data:`LOSSES`).
    """
    check_choice("loss", name, LOSSES)
    if name == "dice-ce":
        return dice_ce_loss()
    return VoxelLoss(name)
