"""SegPGD: PGD on a per-voxel cross-entropy that shifts weight from correctly to wrongly classified voxels.

Gu, Zhao, Tresp, Torr, "SegPGD: An Effective and Efficient Adversarial Attack for Evaluating and Boosting
Segmentation Robustness", ECCV 2022, arXiv:2207.12391. Loss at step t (0-based) of T:

``L_t = (1/N)·[(1 − λ_t)·Σ_{correct} CE_i + λ_t·Σ_{wrong} CE_i]``,  ``λ_t = t / (2T)``,

where "correct" means argmax(logits) equals the label at that step (a detached split). The update is PGD's.
The seed's copy (``asif-hanif/saa``) splits a squared-Dice loss instead of CE (seed-algorithms §6); this follows
the paper.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.losses import class_map, voxel_cross_entropy
from SpectrumAttackLib.attacks.pgd import PGD

__all__ = ["SegPGD"]


class SegPGD(PGD):
    """SegPGD with an L∞ budget (arguments as in :class:`PGD`; ``loss_fn`` is not used).

    Targeted: the cross-entropy towards ``target_labels`` is minimised; voxels not yet at the target get weight
    ``1 − λ_t`` and those already there ``λ_t`` (the paper's split, mirrored).

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape.

    Example:
        >>> result = SegPGD(model, eps=4, alpha=0.01, steps=20)(images, labels)
    """

    name = "segpgd"
    paper = ("Gu et al., SegPGD: An Effective and Efficient Adversarial Attack for Evaluating and Boosting "
             "Segmentation Robustness, ECCV 2022")
    uses_loss_fn: ClassVar[bool] = False
    fixed_params: ClassVar[frozenset[str]] = frozenset({"loss"})

    def lambda_at(self, t: int) -> float:
        """Weight of the wrongly classified voxels at step ``t`` (0-based): ``t / (2·steps)``, in [0, 0.5)."""
        return t / (2.0 * self.steps)

    def objective(self, logits: torch.Tensor, goal: torch.Tensor, images: torch.Tensor,
                  adversarial: torch.Tensor, context: Any, t: int) -> torch.Tensor:
        ce = voxel_cross_entropy(logits, goal)
        lam = self.lambda_at(t)
        with torch.no_grad():
            hit = class_map(logits)[:, 0] == goal[:, 0]
            # untargeted: voxels still correct carry 1 − λ; targeted: voxels not yet at the target do.
            weight = torch.where(hit, lam, 1.0 - lam) if self.targeted else torch.where(hit, 1.0 - lam, lam)
        loss = (weight * ce).mean()
        return -loss if self.targeted else loss
