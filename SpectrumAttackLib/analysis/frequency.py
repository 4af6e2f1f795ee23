"""Frequency analysis of an adversarial perturbation: is the model's weakness low- or high-frequency?

The perturbation ``δ = adversarial − clean`` (model grid, [0, 1] units) is split into blocks and taken to the block
DCT (the transform SA² and VAFA work in, :mod:`SpectrumAttackLib.transforms`). Keeping only some coefficients and
going back gives a filtered perturbation; the clean image plus it (clamped to [0, 1]) is segmented and scored. Two
families of filters:

* the DCT bands of the attacks (:func:`~SpectrumAttackLib.transforms.bands.band_mask`: ``low``, ``middle``,
  ``high``, ``all``), each kept alone;
* a radial sweep: the normalised frequency radius ``ρ = ‖(i₁/b₁, i₂/b₂, i₃/b₃)‖ / ‖((b₁−1)/b₁, ...)‖`` (0 at DC,
  1 at the highest coefficient); at each cut-off ``c`` the low-pass keeps ``ρ ≤ c`` and the high-pass ``ρ > c``.

Each filtered perturbation is reported with its share of the perturbation's energy (Parseval: the orthonormal DCT
keeps the squared L2 norm) and the Dice of its prediction against the reference. A low-frequency attack (SA²'s
claim) keeps most of its effect under the low-pass; a voxel attack such as PGD spreads over every band. The
analysis follows the low/high-pass study of Malik et al. (BMVC 2024) on block DCTs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.checks import check_block_size, check_range
from SpectrumAttackLib.transforms.bands import band_mask
from SpectrumAttackLib.transforms.blocks import merge_blocks_3d, split_blocks_3d
from SpectrumAttackLib.transforms.dct import dct_nd, idct_nd

__all__ = ["BANDS", "CUTOFFS", "analyze_attack", "filter_perturbation", "frequency_analysis", "model_predictor",
           "radial_mask"]

#: the DCT bands scored one at a time.
BANDS: tuple[str, ...] = ("low", "middle", "high", "all")
#: cut-offs of the radial sweep (normalised radius).
CUTOFFS: tuple[float, ...] = (0.1, 0.2, 0.35, 0.5, 0.75)

Predictor = Callable[[torch.Tensor], torch.Tensor]


def radial_mask(block_size: Sequence[int], cutoff: float) -> torch.Tensor:
    """Boolean ``[b1, b2, b3]`` mask of the coefficients with normalised radius ``ρ ≤ cutoff`` (the low-pass)."""
    grids = torch.meshgrid(*[torch.arange(b, dtype=torch.float64) / b for b in block_size], indexing="ij")
    top = sum(((b - 1) / b) ** 2 for b in block_size) ** 0.5
    return (sum(g**2 for g in grids).sqrt() / top) <= cutoff + 1e-12


def filter_perturbation(delta: torch.Tensor, block_size: Sequence[int], keep: torch.Tensor
                        ) -> tuple[torch.Tensor, float]:
    """``(filtered δ, kept energy fraction)``: δ ``[B, C, H, W, D]`` with only the block-DCT coefficients in
    ``keep`` (``[b1, b2, b3]`` bool); the fraction is the kept share of the coefficients' squared sum (0 for δ = 0).
    Volumes are padded to whole blocks by replication, as the attacks do, and cropped back."""
    coefficients = dct_nd(split_blocks_3d(delta.double(), block_size), 3)
    kept = coefficients * keep.to(coefficients.device)
    total = float(coefficients.pow(2).sum())
    filtered = merge_blocks_3d(idct_nd(kept, 3), delta.shape[-3:]).to(delta.dtype)
    return filtered, float(kept.pow(2).sum()) / total if total > 0 else 0.0


def model_predictor(model: torch.nn.Module, roi: Sequence[int], overlap: float = 0.5, sw_batch_size: int = 1,
                    precision: str = "auto") -> Predictor:
    """``images [B, C, H, W, D] → class map [B, 1, H, W, D]`` by sliding-window inference of ``model``."""
    from SpectrumAttackLib.inference.sliding import predict_logits

    def predict(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return class_map(predict_logits(model, images, tuple(roi), overlap, sw_batch_size, precision=precision))

    return predict


def frequency_analysis(
    predict: Predictor,
    images: torch.Tensor,
    adversarial: torch.Tensor,
    reference: torch.Tensor,
    num_classes: int,
    *,
    block_size: Sequence[int] | int = 8,
    cutoffs: Sequence[float] = CUTOFFS,
) -> dict[str, Any]:
    """Dice with each band (and each radial low/high-pass) of the perturbation kept, next to its energy share.

    Args:
        predict: images → class map (e.g. :func:`model_predictor`).
        images, adversarial: ``[B, C, H, W, D]`` clean and attacked images in [0, 1] (the model grid).
        reference: ``[B, 1, H, W, D]`` labels the Dice is taken against (ground truth or the clean prediction).
        num_classes: K, background included; the Dice is the mean foreground Dice per case, averaged.
        block_size: DCT block edge(s). Default 8.
        cutoffs: normalised radii of the sweep, each in (0, 1).

    Returns:
        ``{"block_size", "clean_dice", "adversarial_dice", "perturbation_l2", "bands": [{"band", "energy",
        "dice"}], "radial": [{"cutoff", "low_energy", "low_dice", "high_energy", "high_dice"}]}``.

    Raises:
        ValueError: images and adversarial of different shapes, a bad block size or cut-off.
    """
    from SpectrumAttackLib.metrics.overlap import dice_per_sample

    block = check_block_size("block_size", block_size, 3)
    cutoffs = [check_range("cutoffs", c, 0.0, 1.0, low_inclusive=False, high_inclusive=False) for c in cutoffs]
    if images.shape != adversarial.shape or images.dim() != 5:
        raise ValueError(f"adversarial must have the shape of images [B, C, H, W, D] {list(images.shape)}, got "
                         f"{list(adversarial.shape)}.")
    delta = (adversarial.float() - images.float()).detach()

    def dice_of(perturbation: torch.Tensor) -> float:
        prediction = predict((images.float() + perturbation).clamp(0.0, 1.0))
        return float(dice_per_sample(prediction, reference, num_classes).mean())

    bands = []
    for band in BANDS:
        filtered, energy = filter_perturbation(delta, block, band_mask(block, band))
        bands.append({"band": band, "energy": energy, "dice": dice_of(filtered)})
    radial = []
    for cutoff in cutoffs:
        low = radial_mask(block, cutoff)
        low_delta, low_energy = filter_perturbation(delta, block, low)
        high_delta, high_energy = filter_perturbation(delta, block, ~low)
        radial.append({"cutoff": cutoff, "low_energy": low_energy, "low_dice": dice_of(low_delta),
                       "high_energy": high_energy, "high_dice": dice_of(high_delta)})
    return {"block_size": list(block), "clean_dice": dice_of(torch.zeros_like(delta)),
            "adversarial_dice": dice_of(delta), "perturbation_l2": float(delta.norm()), "bands": bands,
            "radial": radial}


def analyze_attack(case: Any, result: Any, *, block_size: Sequence[int] | int = 8,
                   cutoffs: Sequence[float] = CUTOFFS) -> dict[str, Any]:
    """:func:`frequency_analysis` of one attack on one volume, in its model grid.

    Args:
        case: the :class:`~SpectrumAttackLib.workflows.single.PreparedCase` the attack ran on (its model, grid and
            sliding window, nnU-Net's included, predict the filtered images).
        result: its :class:`~SpectrumAttackLib.workflows.single.SingleVolumeResult` (any attack).
        block_size, cutoffs: as :func:`frequency_analysis`.

    Returns:
        :func:`frequency_analysis`'s dictionary; the Dice is against the reference labels, else the clean prediction.

    Example:
        >>> case = prepare_case("ct.nii.gz", model="unet-btcv-3mm")
        >>> analysis = analyze_attack(case, case.attack("pgd", {"eps": 4}))
    """
    grid = result.model_grid
    reference = grid["labels"] if grid.get("labels") is not None else grid["seg_clean"]

    def predict(images: torch.Tensor) -> torch.Tensor:
        case.grid.use(case.mapping)
        with torch.no_grad():
            return class_map(case.grid.predict_logits(images.to(case.device))).cpu()

    return frequency_analysis(predict, grid["clean"], grid["adversarial"], reference.cpu(), case.num_classes,
                              block_size=block_size, cutoffs=cutoffs)
