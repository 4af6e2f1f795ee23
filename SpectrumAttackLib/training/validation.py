"""Validation during training: sliding-window inference on whole volumes, mean Dice over all cases.

The reference returned the Dice of the last validation volume only and never reset its metric buffers
(seed-algorithms §13 item 7). Here every call starts from zero and averages over every case; the sum and count
are tensors so that distributed ranks, each validating its share of the cases, can all-reduce them.

Two per-case Dice rules (:data:`VAL_METRICS`, ``--val_metric``) select the best checkpoint:

``foreground`` (default) — mean over the organs (background excluded) present in the prediction or the labels;
    an organ predicted but absent from the labels scores 0. Chosen as default because the background's Dice
    (≈ 0.99 on abdominal CT) compresses the differences between checkpoints, and a checkpoint that hallucinates
    organs should lose, not tie.
``reference`` — the reference's rule (MONAI ``DiceMetric(include_background=True)``): mean over all classes
    including background, a class absent from the labels skipped (NaN) whatever the prediction. Use it to
    reproduce the reference's model selection (over all cases here, not the last one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from SpectrumAttackLib.attacks.base import model_device
from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.checks import check_choice
from SpectrumAttackLib.inference.sliding import predict_logits
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.precision import Precision, resolve_precision
from SpectrumAttackLib.training.config import VAL_METRICS

__all__ = ["ValidationResult", "as_plain_tensor", "validate"]


def as_plain_tensor(value: Any) -> torch.Tensor:
    """A plain ``torch.Tensor`` (MONAI ``MetaTensor`` metadata dropped)."""
    return value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)


@dataclass
class ValidationResult:
    """Dice of one validation pass.

    Attributes:
        dice_sum: sum over the cases of each case's mean Dice by the chosen rule (0-d float64 tensor).
        count: number of cases (0-d float64 tensor).
        per_case: each case's mean Dice, in loader order (this rank's cases only).
    """

    dice_sum: torch.Tensor
    count: torch.Tensor
    per_case: list[float] = field(default_factory=list)

    @property
    def mean_dice(self) -> float:
        """Mean over all cases of the per-case mean Dice; NaN without cases."""
        return float(self.dice_sum / self.count) if float(self.count) > 0 else float("nan")

    def all_reduce(self) -> None:
        """Sum ``dice_sum`` and ``count`` over the ranks of the default process group (in place)."""
        import torch.distributed as dist

        for tensor in (self.dice_sum, self.count):
            dist.all_reduce(tensor)


def validate(
    model: nn.Module,
    cases: Iterable[Mapping[str, Any]],
    *,
    roi: tuple[int, int, int],
    overlap: float = 0.5,
    sw_batch_size: int = 1,
    precision: str | Precision = "auto",
    rank: int = 0,
    world_size: int = 1,
    metric: str = "foreground",
) -> ValidationResult:
    """Mean Dice of ``model`` over every validation case (this rank's share of them).

    Each case is predicted whole by sliding-window inference (the reference's validation) and scored with
    :func:`~SpectrumAttackLib.metrics.overlap.dice_per_sample` by the rule ``metric`` (module docstring). Case
    ``i`` is scored by rank ``i % world_size``.

    Args:
        model: segmentation network on its device; its training flags are restored afterwards.
        cases: mappings with ``"image"`` ``[1, C, H, W, D]`` and ``"label"`` ``[1, 1, H, W, D]`` (batch size 1,
            as the reference's validation loader), each a whole preprocessed volume.
        roi: window size in voxels.
        overlap: window overlap in [0, 1).
        sw_batch_size: windows per forward pass.
        precision: of the model passes (:mod:`SpectrumAttackLib.precision`); Dice is computed on float32 logits.
        rank, world_size: this process's share of the cases.
        metric: ``"foreground"`` or ``"reference"`` (:data:`VAL_METRICS`).

    Returns:
        the sum and count of per-case Dice (all-reducible) and this rank's per-case values.
    """
    reference = check_choice("metric", metric, VAL_METRICS) == "reference"
    device = model_device(model)
    precision = resolve_precision(precision, device)
    dice_sum = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    per_case: list[float] = []
    with torch.no_grad():
        for index, case in enumerate(cases):
            if index % world_size != rank:
                continue
            images = as_plain_tensor(case["image"]).to(device=device, dtype=torch.float32)
            labels = as_plain_tensor(case["label"]).to(device=device).long()
            logits = predict_logits(model, images, roi, overlap, sw_batch_size, precision=precision)
            dice = dice_per_sample(class_map(logits), labels, logits.shape[1],
                                   include_background=reference, ignore_empty=reference)
            dice_sum += dice.sum().double()
            count += dice.numel()
            per_case.extend(float(d) for d in dice)
    return ValidationResult(dice_sum=dice_sum, count=count, per_case=per_case)
