"""What the single-volume attack and the robustness audit return (plain dataclasses, torch-free).

They live here, below the workflows, so that the remote client (:mod:`SpectrumAttackLib.remote`), which has no
torch, returns the very same types as the local API (:func:`SpectrumAttackLib.workflows.single.attack_single_volume`,
:func:`SpectrumAttackLib.workflows.audit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["AuditResult", "SingleVolumeResult"]


@dataclass(frozen=True)
class SingleVolumeResult:
    """What :func:`attack_single_volume` returns; every array is in the input's IJK grid.

    Attributes:
        adversarial: ``[I, J, K]`` float32, input intensity units (HU for CT): ``input + perturbation``.
        perturbation: ``[I, J, K]`` float32, the same units.
        seg_clean, seg_adv: ``[I, J, K]`` predictions on the input and on ``adversarial`` (uint8, or int16 for more
            than 255 classes).
        metrics: :func:`~SpectrumAttackLib.metrics.evaluate.compute_case_metrics` in the model grid, plus
            ``"seconds"`` (the attack's wall-clock time), ``"precision"`` (as asked) and ``"precision_used"``
            (what the model passes ran in: ``"fp32"``, ``"bf16"`` or ``"fp16"``).
        classes: ``[{"id", "name", "rgb"}, ...]`` of the model, background first.
        attack_config: the attack's parameters, the whole-volume settings, the model and its preprocessing, and the
            precision (``precision`` asked for, ``precision_used``).
        seconds: wall-clock time of the whole workflow.
        model_grid: model-grid tensors for reports, on the CPU: ``clean`` and ``adversarial`` images
            ``[1, 1, H, W, D]`` in [0, 1] (``adversarial`` = the preprocessed ``adversarial`` above),
            ``attack_output`` (the attack's own result before the round trip), ``seg_clean``, ``seg_adv`` and
            ``labels`` (``[1, 1, H, W, D]`` int64; ``labels`` None without reference labels), ``affine`` (4×4
            IJK→RAS), ``spacing_mm`` and ``mapping`` (:class:`~SpectrumAttackLib.inference.geometry.GridMapping`).
            Empty in results of a remote run (they stay on the server).
    """

    adversarial: np.ndarray
    perturbation: np.ndarray
    seg_clean: np.ndarray
    seg_adv: np.ndarray
    metrics: dict[str, Any]
    classes: list[dict[str, Any]]
    attack_config: dict[str, Any]
    seconds: float
    model_grid: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit` returns.

    Attributes:
        cells: one record per case × model × attack × budget, in plan order (see
            :mod:`SpectrumAttackLib.audit.outputs` for the fields).
        clean: one record per case × model (clean Dice and HD95, overall and per class).
        summary: :func:`~SpectrumAttackLib.audit.summary.summarise` of them.
        manifest: arguments, settings, grid, versions, seed, weights sha256 and timing.
        folder: where the results were written, or None.
        reused: how many cells came from an earlier run (``resume``).
    """

    cells: list[dict[str, Any]]
    clean: list[dict[str, Any]]
    summary: dict[str, Any]
    manifest: dict[str, Any]
    folder: Path | None
    reused: int = 0
