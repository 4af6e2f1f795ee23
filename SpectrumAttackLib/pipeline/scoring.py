"""Segment, score and summarise a case: the pipeline's prediction and scoring steps (every interface) and the
printed tables of the subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.inference.sliding import predict_logits
from SpectrumAttackLib.metrics.evaluate import compute_case_metrics

__all__ = ["format_case_line", "format_summary", "score_case", "segment"]


def segment(model: torch.nn.Module, images: torch.Tensor, roi: Sequence[int], args: argparse.Namespace) -> torch.Tensor:
    """Sliding-window prediction (``--infer_overlap``, ``--sw_batch_size``, ``--precision``): ``[1, 1, H, W, D]``
    int64 class map."""
    return class_map(predict_logits(model, images, roi, args.infer_overlap, args.sw_batch_size,
                                    precision=args.precision))


def score_case(
    clean: torch.Tensor, adversarial: torch.Tensor, seg_clean: torch.Tensor, seg_adv: torch.Tensor,
    labels: torch.Tensor | None, *, class_names: Sequence[str], spacing_mm: Sequence[float], preset: str,
) -> dict[str, Any]:
    """:func:`~SpectrumAttackLib.metrics.evaluate.compute_case_metrics` on ``[1, 1, H, W, D]`` tensors."""
    return compute_case_metrics(
        clean[0, 0].cpu(), adversarial[0, 0].cpu(), seg_clean[0, 0].cpu(), seg_adv[0, 0].cpu(),
        labels=None if labels is None else labels[0, 0].cpu(), num_classes=len(class_names),
        class_names=list(class_names), spacing_mm=tuple(spacing_mm), preset=preset,
    )


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def format_case_line(name: str, metrics: Mapping[str, Any]) -> str:
    """One line per case: Dice clean → adversarial, fooling rate, SSIM, PSNR, seconds."""
    clean, adv = metrics.get("clean", {}), metrics.get("adversarial", {})
    return (f"{name}: Dice {_num(clean.get('dice'))} -> {_num(adv.get('dice'))}, fooling rate "
            f"{_num(adv.get('fooling_rate'))}, SSIM {_num(adv.get('ssim'))}, PSNR {_num(adv.get('psnr'), 1)} dB"
            + (f", {metrics['seconds']:.1f} s" if isinstance(metrics.get("seconds"), (int, float)) else ""))


def format_summary(metrics: Mapping[str, Any], title: str = "") -> str:
    """A table of clean vs adversarial Dice per class, mean Dice and HD95, then SSIM, PSNR, fooling rate, seconds.

    Args:
        metrics: one case's metrics or the mean over cases (same layout, from ``compute_case_metrics``).
        title: first line.
    """
    clean, adv = metrics.get("clean", {}), metrics.get("adversarial", {})
    units = metrics.get("units", {})
    names = list((clean.get("dice_per_class") or {}).keys())
    width = max([len(n) + 5 for n in names] + [len("fooling rate"), 12])
    lines = [title] if title else []
    lines.append(f"{'':{width}}  {'clean':>8}  {'adversarial':>11}")
    for name in names:
        c = clean["dice_per_class"].get(name)
        a = (adv.get("dice_per_class") or {}).get(name)
        lines.append(f"{'Dice ' + name:{width}}  {_num(c):>8}  {_num(a):>11}")
    lines.append(f"{'mean Dice':{width}}  {_num(clean.get('dice')):>8}  {_num(adv.get('dice')):>11}")
    hd_unit = units.get("hd95", "")
    lines.append(f"{('HD95 [' + hd_unit + ']') if hd_unit else 'HD95':{width}}  {_num(clean.get('hd95'), 2):>8}  "
                 f"{_num(adv.get('hd95'), 2):>11}")
    lines.append(f"{'SSIM':{width}}  {'':>8}  {_num(adv.get('ssim')):>11}")
    lines.append(f"{'PSNR [dB]':{width}}  {'':>8}  {_num(adv.get('psnr'), 2):>11}")
    lines.append(f"{'fooling rate':{width}}  {'':>8}  {_num(adv.get('fooling_rate')):>11}")
    if isinstance(metrics.get("seconds"), (int, float)):
        lines.append(f"{'seconds':{width}}  {'':>8}  {metrics['seconds']:>11.1f}")
    return "\n".join(lines)
