"""Attack one volume in its own grid: what the CLI, the Slicer module and the demo run for a single image.

Steps: preprocess to the model grid → clean sliding-window prediction → labels for the attack (reference labels
mapped to the model grid, else the clean prediction) → whole-volume attack → perturbation back to input units and
the input grid → ``adversarial = input + perturbation`` → preprocessing and prediction again on that adversarial
volume (the end-to-end effect a user of the saved volume gets) → both segmentations back to the input grid →
metrics in the model grid.

The perturbation is carried in input intensity units (HU for CT): a model-grid change ``δ`` in [0, 1] units is
``δ·(a_max − a_min)/(b_max − b_min)`` HU. Where the input lies outside the intensity window (air, bone), the
window clips and the perturbation changes the HU values without changing what the model sees; the end-to-end
prediction measures exactly that.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.base import model_device
from SpectrumAttackLib.attacks.losses import class_map
from SpectrumAttackLib.attacks.ssim_target import budget_knob
from SpectrumAttackLib.checks import check_choice, check_range
from SpectrumAttackLib.inference.geometry import GridMapping
from SpectrumAttackLib.inference.ssim_budget import attack_volume_at_ssim
from SpectrumAttackLib.inference.tiles import ATTACK_MODES, Cancelled, attack_volume, attack_work
from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing
from SpectrumAttackLib.pipeline.case import Case
from SpectrumAttackLib.pipeline.results import SingleVolumeResult
from SpectrumAttackLib.pipeline.scoring import score_case
from SpectrumAttackLib.pipeline.validate import (
    check_blocks_fit_attack,
    check_image,
    check_labels,
    read_image,
    read_labels,
    warn_if_outside_window,
)
from SpectrumAttackLib.precision import Precision, resolve_precision
from SpectrumAttackLib.runtime import Progress, ProgressCallback
from SpectrumAttackLib.workflows.model_grid import (
    entry_field,
    label_dtype,
    model_classes,
    model_grid,
    model_preprocessing,
    resolve_model,
)

__all__ = ["PreparedCase", "SingleVolumeResult", "attack_single_volume", "prepare_case"]


def _image(image: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(array_ijk, affine)`` from a :class:`~SpectrumAttackLib.io.volumes.Volume` or a pair."""
    if hasattr(image, "array") and hasattr(image, "affine"):
        return image.array, image.affine
    if isinstance(image, (tuple, list)) and len(image) == 2:
        return image[0], image[1]
    raise TypeError(f"image must be a Volume or an (array_ijk, affine) pair, got {type(image).__name__}.")


class PreparedCase:
    """One image with one model, checked and mapped to the model grid; the clean prediction is made once, on first
    use, and shared by every attack run on it (:meth:`attack`).

    Build it with :func:`prepare_case`. Attributes (read-only by convention):
        array: ``[I, J, K]`` the input image (never modified); affine: its ``4×4`` IJK→RAS matrix.
        net: the network (eval mode); entry: its catalogue entry; classes: ``[{"id", "name", "rgb"}]``.
        num_classes: classes including background; prep: the preprocessing (orientation, spacing, window, roi).
        mapping: :class:`~SpectrumAttackLib.inference.geometry.GridMapping` of the image to the model grid.
        images: ``[1, 1, H, W, D]`` float32 model-grid image in [b_min, b_max] on the model's device.
        reference: ``[I, J, K]`` int64 reference labels in the input grid, or None.
        overlap: sliding-window overlap of the predictions; metrics_preset: ``"clinical"`` or ``"paper"``.
        precision: the resolved :class:`~SpectrumAttackLib.precision.Precision` of every model pass (predictions
            and attacks).
    """

    def __init__(self, array: np.ndarray, affine: np.ndarray, net: torch.nn.Module, entry: Any,
                 reference: np.ndarray | None, overlap: float, metrics_preset: str, precision: Precision,
                 name: str = "image") -> None:
        self.array, self.affine, self.net, self.entry = array, affine, net, entry
        self.num_classes = int(entry_field(entry, "num_classes"))
        self.classes = model_classes(entry)
        self.prep = model_preprocessing(entry)
        self.reference = reference
        self.overlap, self.metrics_preset = overlap, metrics_preset
        self.device = model_device(net)
        self.precision = resolve_precision(precision, self.device)
        # nnU-Net models bring nnU-Net's own preprocessing, sliding window and export (inference.nnunet)
        self.grid = model_grid(net, entry, self.prep, overlap, self.precision)
        self.case = Case.from_volume(array, affine, grid=self.grid, labels=reference, name=name, source=name)
        self.mapping = self.case.mapping
        self.images = self.case.images.to(self.device)
        self._logits_clean: torch.Tensor | None = None

    @property
    def logits_clean(self) -> torch.Tensor:
        """``[1, K, H, W, D]`` clean logits in the model grid (computed once)."""
        if self._logits_clean is None:
            self.grid.use(self.mapping)
            self._logits_clean = self.grid.predict_logits(self.images)
        return self._logits_clean

    @functools.cached_property
    def seg_clean(self) -> torch.Tensor:
        """``[1, 1, H, W, D]`` int64 clean prediction in the model grid (computed once)."""
        return class_map(self.logits_clean)

    def labels(self) -> torch.Tensor:
        """``[1, 1, H, W, D]`` labels the attack pushes away from: the reference mapped to the model grid, else the
        clean prediction."""
        if self.case.labels is None:
            return self.seg_clean
        return self.case.labels.to(self.device)

    def predict_adversarial(self, adversarial: np.ndarray) -> tuple[Case, torch.Tensor]:
        """Preprocess ``adversarial`` (``[I, J, K]`` on this case's grid, input units) as a user of the saved volume
        would, and predict it: ``(its model-grid case, [1, K, H, W, D] logits)``."""
        adv_case = Case.from_volume(adversarial, self.affine, grid=self.grid, name=f"{self.case.name} adversarial",
                                    source=self.case.source)
        self.grid.use(adv_case.mapping)  # nnU-Net z-score models normalise each image with its own statistics
        logits_adv = self.grid.predict_logits(adv_case.images.to(self.device))
        self.grid.use(self.mapping)
        return adv_case, logits_adv

    def score(self, adv_case: Case, seg_adv: torch.Tensor) -> dict[str, Any]:
        """The metrics of the clean and the adversarial prediction (``seg_adv`` ``[1, 1, H, W, D]``, the class map
        of :meth:`predict_adversarial`'s logits) in the model grid
        (:func:`~SpectrumAttackLib.pipeline.scoring.score_case`), against the reference labels (else the clean
        prediction)."""
        return score_case(self.images, adv_case.images.to(self.device), self.seg_clean,
                             seg_adv, self.case.labels,
                             class_names=[c["name"] for c in self.classes], spacing_mm=self.mapping.spacing_mm,
                             preset=self.metrics_preset)

    def attack(
        self,
        attack: str,
        params: Mapping[str, Any] | None = None,
        *,
        seed: int = 0,
        attack_mode: str = "tiles",
        tile_batch_size: int = 4,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        target_ssim: float = 0.0,
    ) -> SingleVolumeResult:
        """Attack this case, map the perturbation back to the input grid, predict again and score.

        Args: as :func:`attack_single_volume`.

        Returns:
            :class:`SingleVolumeResult`; its ``seconds`` counts this call only.

        Raises:
            ValueError: unknown attack, bad parameters, blocks larger than the attacked region, a bad mode.
            Cancelled: ``cancel()`` returned True.
        """
        start = time.perf_counter()
        attack_mode = check_choice("attack_mode", attack_mode, ATTACK_MODES)
        params = dict(params or {})
        if "seed" in params and params["seed"] != seed:
            raise ValueError(f"params['seed'] must equal seed ({seed!r}) or be left out, got {params['seed']!r}.")
        params["seed"] = seed
        precision = self.precision.requested
        if "precision" in params and params["precision"] != precision:
            raise ValueError(f"params['precision'] must equal precision ({precision!r}) or be left out, "
                             f"got {params['precision']!r}.")
        params["precision"] = precision
        if cancel is not None and not callable(cancel):
            raise TypeError(f"cancel must be callable or None, got {cancel!r}.")
        if target_ssim:
            check_range("target_ssim", target_ssim, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
            budget_knob(attack)
        roi = self.prep["roi"]
        attacker = attacks.create(attack, self.net, **params)
        check_blocks_fit_attack(params.get("block_size"), roi, self.mapping.model_shape, attack_mode)
        work = attack_work(attacker, self.mapping.model_shape, roi, attack_mode, tile_batch_size)
        total = work + 4  # preprocess, clean inference, the attack steps, adversarial inference, metrics

        def report(done: int, stage: str, message: str = "") -> None:
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled before {stage}")
            if progress is not None:
                progress(Progress(done, total, stage, message))

        report(0, "preprocess", f"model grid {list(self.mapping.model_shape)}")
        report(1, "inference", "clean prediction")
        images, mapping, seg_clean = self.images, self.mapping, self.seg_clean
        labels = self.labels()
        report(2, "attack", f"{attack}, {attack_mode}")

        def attack_progress(p: Progress) -> None:
            if progress is not None:
                progress(Progress(2 + p.done, total, p.stage, p.message))

        # nnU-Net's cubic resampling may overshoot the window a little; attacks start from the image in [0, 1].
        attack_input = images.clamp(mapping.b_min, mapping.b_max)
        self.grid.use(mapping)
        volume = {"roi": roi, "mode": attack_mode, "tile_batch_size": tile_batch_size, "overlap": self.overlap,
                  "progress": attack_progress, "cancel": cancel, "window_model": self.grid.window}
        level = None
        if target_ssim:
            result, level = attack_volume_at_ssim(attack, self.net, attack_input, labels, [target_ssim],
                                                  params=params, **volume)[0]
        else:
            result = attack_volume(attacker, attack_input, labels, **volume)
        perturbation_model = (result.adversarial - attack_input)[0, 0] * mapping.intensity_scale
        perturbation = self.grid.from_model_grid(perturbation_model, mapping, mode="linear").astype(
            np.float32, copy=False)
        adversarial = np.asarray(self.array, dtype=np.float32) + perturbation

        report(work + 2, "inference", "prediction on the adversarial volume")
        adv_case, logits_adv = self.predict_adversarial(adversarial)
        seg_adv = class_map(logits_adv)

        report(work + 3, "metrics")
        metrics = self.score(adv_case, seg_adv)
        metrics["seconds"] = result.seconds
        if level is not None:
            metrics["target_ssim"] = {**level.as_record(), "budget_name": budget_knob(attack),
                                      "measured_in": "model grid, attack output"}
        metrics.update(self.precision.as_record())
        dtype = label_dtype(self.num_classes)
        seconds = time.perf_counter() - start
        report(total, "metrics", "done")
        return SingleVolumeResult(
            adversarial=adversarial,
            perturbation=perturbation,
            seg_clean=self.grid.segmentation(self.logits_clean, mapping).astype(dtype, copy=False),
            seg_adv=self.grid.segmentation(logits_adv, adv_case.mapping).astype(dtype, copy=False),
            metrics=metrics,
            classes=self.classes,
            attack_config=_attack_config({**result.config, **self.precision.as_record()}, self.entry, self.prep,
                                         mapping, attack_mode, self.overlap, self.device),
            seconds=seconds,
            model_grid={
                "clean": images.cpu(), "adversarial": adv_case.images, "attack_output": result.adversarial.cpu(),
                "seg_clean": seg_clean.cpu(), "seg_adv": seg_adv.cpu(), "labels": self.case.labels,
                "affine": mapping.model_affine, "spacing_mm": mapping.spacing_mm, "mapping": mapping,
            },
        )


def prepare_case(
    image: Any,
    *,
    model: Any,
    reference_labels: np.ndarray | None = None,
    device: str | torch.device = "auto",
    overlap: float = 0.5,
    metrics_preset: str = "clinical",
    image_name: str = "image",
    labels_name: str = "reference_labels",
    precision: str = "auto",
) -> PreparedCase:
    """Check one image (and its labels) with the checks every interface runs, load and probe the model, and map the
    image to the model grid; the entry point for running several attacks on one case and model.

    Args:
        image: a :class:`~SpectrumAttackLib.io.volumes.Volume`, an ``(array_ijk, affine)`` pair, or a NIfTI/NRRD
            path (read with :func:`~SpectrumAttackLib.pipeline.validate.read_image`). Never modified.
        model: a catalogue name or model path (loaded on ``device``; bundles never run code here), or a
            ``LoadedModel`` (used on its own device).
        reference_labels: ``[I, J, K]`` class ids on the image's grid (array or label file path), or None.
        device, overlap, metrics_preset, precision: as :func:`attack_single_volume`.
        image_name, labels_name: the parameter names used in error messages (``"--image"``, ``"inputVolume"``).

    Returns:
        A :class:`PreparedCase`; call ``.attack(name, params, seed=...)`` once per attack.

    Raises:
        ValueError: see :func:`attack_single_volume`; a model whose probe forward fails or gives another number of
            channels than its classes.
        FileNotFoundError: a path that does not exist.

    Example (one case and model, several attacks; the clean prediction is computed once):
        >>> case = prepare_case("ct.nii.gz", model="unet-btcv-3mm", reference_labels="seg.nii.gz")
        >>> for name, params in [("pgd", {"eps": 4}), ("saa", {"steps": 10})]:
        ...     print(name, case.attack(name, params, seed=0).metrics["adversarial"]["dice"])
    """
    from SpectrumAttackLib.pipeline.probe import probe_model

    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, image_name)
    array, affine = _image(image)
    array = check_image(image_name, array)
    overlap = check_range("overlap", overlap, 0.0, 1.0, high_inclusive=False)
    metrics_preset = check_choice("metrics_preset", getattr(metrics_preset, "value", metrics_preset),
                                  ("clinical", "paper"))
    net, entry = resolve_model(model, device)
    precision = resolve_precision(precision, model_device(net))  # e.g. fp16 on a CPU is refused before any work
    num_classes = int(entry_field(entry, "num_classes"))
    if isinstance(reference_labels, (str, os.PathLike)):
        reference_labels = read_labels(reference_labels, labels_name, array.shape, num_classes)
    elif reference_labels is not None:
        if isinstance(reference_labels, torch.Tensor):
            reference_labels = reference_labels.detach().cpu().numpy()
        reference_labels = check_labels(labels_name, reference_labels, array.shape, num_classes)
    prep = model_preprocessing(entry)
    if not isinstance(entry_field(entry, "preprocessing"), NnUNetPreprocessing):  # nnU-Net: strict weights + plans
        probe_model(net, num_classes, prep["roi"], name="model")  # checked on loading; a patch pass costs seconds
    warn_if_outside_window(image_name, array, prep["a_min"], prep["a_max"])
    return PreparedCase(array, affine, net, entry, reference_labels, overlap, metrics_preset, precision)


def attack_single_volume(
    image: Any,
    *,
    model: Any,
    attack: str,
    params: Mapping[str, Any] | None = None,
    reference_labels: np.ndarray | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    precision: str = "auto",
    attack_mode: str = "tiles",
    overlap: float = 0.5,
    tile_batch_size: int = 4,
    metrics_preset: str = "clinical",
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    image_name: str = "image",
    labels_name: str = "reference_labels",
    target_ssim: float = 0.0,
) -> SingleVolumeResult:
    """Attack one volume given in its own grid and measure the effect: :func:`prepare_case` then
    :meth:`PreparedCase.attack`.

    Args:
        image: a :class:`~SpectrumAttackLib.io.volumes.Volume`, ``(array_ijk, affine)`` or a NIfTI/NRRD path: a
            3-D scalar volume in input units (HU for CT) and its 4×4 IJK→RAS matrix. Never modified.
        model: a catalogue name or checkpoint path (loaded on ``device``), or a ``LoadedModel`` (used on its own
            device) whose ``entry`` gives ``classes``, ``num_classes`` and ``preprocessing``.
        attack: registry name (``"saa"``, ``"pgd"``, ...; see :func:`SpectrumAttackLib.attacks.available`).
        params: the attack's parameters (e.g. ``{"steps": 10, "rho": 0.2}``); ``eps``/``std`` on the 0–255 scale.
        reference_labels: ``[I, J, K]`` ground truth in the input grid (or a label file), values in
            ``[0, num_classes)``. The attack pushes away from it and the metrics compare against it; ``None`` uses
            the clean prediction.
        device: where a model given by name is loaded: ``"auto"``, ``"cpu"``, ``"cuda"``... Default "auto".
        seed: attack seed (each tile batch adds its index). Default 0.
        precision: of every model pass (both predictions and the attack): ``"auto"``, ``"fp32"``, ``"bf16"`` or
            ``"fp16"`` (CUDA); see :mod:`SpectrumAttackLib.precision`. Default "auto".
        attack_mode: ``"tiles"`` (the reference's tiling, overlaps averaged) or ``"sliding-window"`` (the
            evaluation's windows). Default "tiles".
        overlap: sliding-window overlap of both predictions (and of the attack in sliding-window mode),
            ``0 <= overlap < 1``. Default 0.5.
        tile_batch_size: tiles per attack call in tiles mode, ≥ 1. Default 4.
        metrics_preset: ``"clinical"`` or ``"paper"`` (see :mod:`SpectrumAttackLib.metrics.evaluate`).
        progress: called with ``Progress(done, total, stage, message)`` over the stages ``"preprocess"``,
            ``"inference"``, ``"attack"`` (one unit per attack step), ``"inference"`` again and ``"metrics"``;
            ``done``/``total`` count over the whole job.
        cancel: polled between stages and attack steps; returning True stops with :class:`Cancelled`.
        image_name, labels_name: the parameter names used in error messages.
        target_ssim: 0 (default) attacks at the budget in ``params``; a value in (0, 1) finds the strongest budget
            of the attack's knob whose output keeps this 3-D SSIM to the model-grid image
            (:func:`~SpectrumAttackLib.inference.ssim_budget.attack_volume_at_ssim`, up to 8 attack runs);
            ``metrics["target_ssim"]`` says how the level was reached.

    Returns:
        :class:`SingleVolumeResult` (``seconds``: the whole workflow).

    Raises:
        ValueError: the image is not a finite 3-D scalar volume with 2+ voxels per axis; reference labels of another
            shape, not integer, negative or outside the model's classes; a model whose probe forward fails or
            gives another channel count; an unknown attack, parameter, mode, preset or precision.
        Cancelled: ``cancel()`` returned True.

    Example:
        >>> vol = read_volume("ct.nii.gz")
        >>> result = attack_single_volume(vol, model="btcv-unet", attack="saa", params={"steps": 10})
        >>> write_volume("adv.nii.gz", result.adversarial, vol.affine)
    """
    start = time.perf_counter()
    check_choice("attack", attack, attacks.available())  # before the model is loaded
    case = prepare_case(image, model=model, reference_labels=reference_labels, device=device, overlap=overlap,
                        metrics_preset=metrics_preset, image_name=image_name, labels_name=labels_name,
                        precision=precision)
    result = case.attack(attack, params, seed=seed, attack_mode=attack_mode, tile_batch_size=tile_batch_size,
                         progress=progress, cancel=cancel, target_ssim=target_ssim)
    return dataclasses.replace(result, seconds=time.perf_counter() - start)


def _attack_config(config: dict[str, Any], entry: Any, prep: dict[str, Any], mapping: GridMapping, mode: str,
                   overlap: float, device: torch.device) -> dict[str, Any]:
    name = entry.get("name") if isinstance(entry, Mapping) else getattr(entry, "name", None)
    return {
        **config,
        "attack_mode": mode,
        "inference_overlap": overlap,
        "model": name,
        "preprocessing": {**prep, "roi": list(prep["roi"]), "spacing_mm": list(prep["spacing_mm"])},
        "model_grid_shape": list(mapping.model_shape),
        "model_grid_spacing_mm": list(mapping.spacing_mm),
        "perturbation_units_per_model_unit": mapping.intensity_scale,
        "device": str(device),
    }
