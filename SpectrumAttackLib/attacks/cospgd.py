"""CosPGD: PGD on a per-voxel cross-entropy weighted by the cosine similarity of prediction and label.

Agnihotri, Jung, Keuper, "CosPGD: an efficient white-box adversarial attack for pixel-wise prediction tasks",
ICML 2024, arXiv:2302.02213. Untargeted loss:

``L = (1/N)·Σ_i cos(softmax(logits_i), onehot(y_i)) · CE_i``,

with the cosine detached, so voxels that are still confidently correct drive the step. Targeted: the weight is
``1 − cos(softmax(logits_i), onehot(target_i))`` and the loss is minimised. The update is PGD's. The seed's copy
(``asif-hanif/saa``) scales the whole DiceCE by one mean cosine instead (seed-algorithms §13 item 17).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from SpectrumAttackLib.attacks.losses import voxel_cross_entropy
from SpectrumAttackLib.attacks.pgd import PGD

__all__ = ["CosPGD"]


class CosPGD(PGD):
    """CosPGD with an L∞ budget (arguments as in :class:`PGD`; ``loss_fn`` is not used).

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape.

    Example:
        >>> result = CosPGD(model, eps=4, alpha=0.01, steps=20)(images, labels)
    """

    name = "cospgd"
    paper = ("Agnihotri et al., CosPGD: an efficient white-box adversarial attack for pixel-wise prediction tasks, "
             "ICML 2024")
    uses_loss_fn: ClassVar[bool] = False
    fixed_params: ClassVar[frozenset[str]] = frozenset({"loss"})

    def objective(self, logits: torch.Tensor, goal: torch.Tensor, images: torch.Tensor,
                  adversarial: torch.Tensor, context: Any, t: int) -> torch.Tensor:
        ce = voxel_cross_entropy(logits, goal)
        with torch.no_grad():
            onehot = F.one_hot(goal[:, 0], logits.shape[1]).movedim(-1, 1).to(logits.dtype)
            cos = F.cosine_similarity(logits.softmax(1), onehot, dim=1)
        if self.targeted:
            return -((1.0 - cos) * ce).mean()
        return (cos * ce).mean()
