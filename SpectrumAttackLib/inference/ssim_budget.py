"""Whole-volume attacks driven to target 3-D SSIMs: :func:`~SpectrumAttackLib.attacks.ssim_target.search_levels`
with every run a whole-volume attack (:func:`~SpectrumAttackLib.inference.tiles.attack_volume`, tiles or sliding
window). What ``spectrum-attack attack --target_ssim``, the Slicer module's "Target SSIM" and the audit's
``ssim_levels`` run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from SpectrumAttackLib.attacks.ssim_target import SSIMLevel, budget_knob, search_levels, ssim_to
from SpectrumAttackLib.inference.tiles import VolumeAttackResult, attack_volume

__all__ = ["attack_volume_at_ssim"]


def attack_volume_at_ssim(name: str, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                          targets: Sequence[float], *, params: Mapping[str, Any], tolerance: float = 0.002,
                          max_runs: int = 8, min_weight: float = 0.9,
                          reuse: Mapping[float, VolumeAttackResult] | None = None,
                          **volume: Any) -> list[tuple[VolumeAttackResult, SSIMLevel]]:
    """Attack one volume at the strongest budget of ``name`` per target 3-D SSIM; targets share their runs.

    Args:
        name: an attack with a strength knob (:func:`~SpectrumAttackLib.attacks.ssim_target.budget_knob`).
        model: the segmentation network.
        images: ``[1, C, H, W, D]`` in [0, 1] (model grid). labels: ``[1, 1, H, W, D]``.
        targets: target 3-D SSIMs in (0, 1).
        params: the attack's parameters (seed and precision included); the knob's value is the first budget tried.
        tolerance, max_runs, min_weight: see :func:`~SpectrumAttackLib.attacks.ssim_target.search_levels` (runs
            per volume).
        reuse: runs already made at some budgets with exactly these parameters and volume settings (an audit's
            grid cell at the search's first budget): taken instead of running them again. They still count as
            runs, so the search takes the same path, and gives the same levels, either way.
        volume: keyword arguments of :func:`~SpectrumAttackLib.inference.tiles.attack_volume` (``roi``, ``mode``,
            ...).

    Returns:
        Per target, ``(result, level)``: the chosen run's result (``adversarial`` = the level's image, projected
        where the level says so; ``seconds`` = the runs of the search so far that it made itself; ``config`` adds
        the knob's value found and ``ssim_search``: the level's record, with ``reused``: how many of its runs came
        from ``reuse``) and the level.
    """
    from SpectrumAttackLib import attacks

    knob = budget_knob(name)
    params = dict(params)
    default = float(attacks.attack_parameters(name)[knob])
    start = float(params.pop(knob, default))
    made = dict(reuse or {})
    seconds: list[float] = []
    reused: list[bool] = []

    def run_at(budget: float) -> tuple[torch.Tensor, VolumeAttackResult]:
        result = made.pop(budget, None)
        reused.append(result is not None)
        if result is None:
            result = attack_volume(attacks.create(name, model, **params, **{knob: budget}), images, labels, **volume)
        seconds.append(0.0 if reused[-1] else result.seconds)
        return result.adversarial, result

    levels = search_levels(run_at, ssim_to(images), images, knob, targets,
                           start=start if start > 0 else default,
                           tolerance=tolerance, max_runs=max_runs, min_weight=min_weight)
    out = []
    for level in levels:
        chosen = level.result or VolumeAttackResult(adversarial=images, seconds=0.0, tiles=0, history={})
        config = {**chosen.config, knob: level.budget,
                  "ssim_search": {**level.as_record(), "reused": sum(reused[: level.runs])}}
        out.append((dataclasses.replace(chosen, adversarial=level.adversarial, seconds=sum(seconds[: level.runs]),
                                        config=config), level))
    return out
