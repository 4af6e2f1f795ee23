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

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.base import model_device
from SpectrumAttackLib.checks import check_choice, check_range
from SpectrumAttackLib.inference.geometry import (
    GridMapping,
    check_label_array,
    check_volume_array,
    from_model_grid,
    labels_to_model_grid,
    to_model_grid,
)
from SpectrumAttackLib.inference.sliding import check_roi, predict_logits
from SpectrumAttackLib.inference.tiles import ATTACK_MODES, Cancelled, attack_volume, attack_work
from SpectrumAttackLib.models.nnunet import NnUNetPreprocessing
from SpectrumAttackLib.runtime import Progress, ProgressCallback, resolve_device

__all__ = ["SingleVolumeResult", "attack_single_volume"]

_PREPROCESSING_KEYS = ("orientation", "spacing_mm", "a_min", "a_max", "b_min", "b_max", "roi")


@dataclass(frozen=True)
class SingleVolumeResult:
    """What :func:`attack_single_volume` returns; every array is in the input's IJK grid.

    Attributes:
        adversarial: ``[I, J, K]`` float32, input intensity units (HU for CT): ``input + perturbation``.
        perturbation: ``[I, J, K]`` float32, the same units.
        seg_clean, seg_adv: ``[I, J, K]`` predictions on the input and on ``adversarial`` (uint8, or int16 for more
            than 255 classes).
        metrics: :func:`~SpectrumAttackLib.metrics.evaluate.compute_case_metrics` in the model grid, plus
            ``"seconds"`` (the attack's wall-clock time).
        classes: ``[{"id", "name", "rgb"}, ...]`` of the model, background first.
        attack_config: the attack's parameters, the whole-volume settings, the model and its preprocessing.
        seconds: wall-clock time of the whole workflow.
        model_grid: model-grid tensors for reports, on the CPU: ``clean`` and ``adversarial`` images
            ``[1, 1, H, W, D]`` in [0, 1] (``adversarial`` = the preprocessed ``adversarial`` above),
            ``attack_output`` (the attack's own result before the round trip), ``seg_clean``, ``seg_adv`` and
            ``labels`` (``[1, 1, H, W, D]`` int64; ``labels`` None without reference labels), ``affine`` (4×4
            IJK→RAS), ``spacing_mm`` and ``mapping`` (:class:`~SpectrumAttackLib.inference.geometry.GridMapping`).
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


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise (catalogue entries may be either)."""
    return obj[name] if isinstance(obj, Mapping) else getattr(obj, name)


def _resolve_model(model: Any, device: str | torch.device) -> tuple[torch.nn.Module, Any]:
    """A name or path is loaded with :func:`SpectrumAttackLib.models.load_model`; a ``LoadedModel`` is used as is."""
    if isinstance(model, (str, os.PathLike)):
        from SpectrumAttackLib.models import load_model  # torch-heavy, imported on use

        model = load_model(model, resolve_device(device))
    if not hasattr(model, "model") or not hasattr(model, "entry") or not isinstance(model.model, torch.nn.Module):
        raise TypeError(f"model must be a model name, a path or a LoadedModel, got {type(model).__name__}.")
    return model.model, model.entry


def _preprocessing(entry: Any) -> dict[str, Any]:
    settings = _field(entry, "preprocessing")
    missing = [k for k in _PREPROCESSING_KEYS if not (k in settings if isinstance(settings, Mapping)
                                                      else hasattr(settings, k))]
    if missing:
        raise ValueError(f"model preprocessing must define {', '.join(_PREPROCESSING_KEYS)}, "
                         f"got one without {', '.join(missing)}.")
    out = {k: _field(settings, k) for k in _PREPROCESSING_KEYS}
    out["roi"] = check_roi(tuple(out["roi"]) if not isinstance(out["roi"], int) else out["roi"])
    return out


class _ModelGrid:
    """The geometry of :mod:`~SpectrumAttackLib.inference.geometry` and MONAI's sliding window, behind the same
    methods as :class:`~SpectrumAttackLib.inference.nnunet.NnUNetInference` (nnU-Net models run nnU-Net's own)."""

    def __init__(self, net: torch.nn.Module, prep: dict[str, Any], overlap: float) -> None:
        self.net, self.roi, self.overlap = net, prep["roi"], overlap
        self.settings = {k: prep[k] for k in ("spacing_mm", "a_min", "a_max", "b_min", "b_max", "orientation")}
        self.window = None  # sliding-window attacks wrap the net in MONAI's windows

    def to_model_grid(self, array: np.ndarray, affine: np.ndarray) -> tuple[torch.Tensor, GridMapping]:
        return to_model_grid(array, affine, **self.settings)

    def labels_to_model_grid(self, labels: np.ndarray, mapping: GridMapping) -> torch.Tensor:
        return labels_to_model_grid(labels, mapping)

    def from_model_grid(self, volume: Any, mapping: GridMapping, *, mode: str) -> np.ndarray:
        return from_model_grid(volume, mapping, mode=mode)

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        return predict_logits(self.net, images, self.roi, self.overlap)

    def segmentation(self, logits: torch.Tensor, mapping: GridMapping) -> np.ndarray:
        return from_model_grid(logits.argmax(1)[0].cpu().numpy().astype(np.int64), mapping, mode="nearest")


def _model_grid(net: torch.nn.Module, entry: Any, prep: dict[str, Any], overlap: float) -> Any:
    settings = _field(entry, "preprocessing")
    if isinstance(settings, NnUNetPreprocessing):
        from SpectrumAttackLib.inference.nnunet import NnUNetInference  # needs the nnunet extra

        return NnUNetInference(net, settings, overlap)
    return _ModelGrid(net, prep, overlap)


def _classes(entry: Any) -> list[dict[str, Any]]:
    return [{"id": int(_field(c, "id")), "name": str(_field(c, "name")), "rgb": list(_field(c, "rgb"))}
            for c in _field(entry, "classes")]


def _image(image: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(array_ijk, affine)`` from a :class:`~SpectrumAttackLib.io.volumes.Volume` or a pair."""
    if hasattr(image, "array") and hasattr(image, "affine"):
        return image.array, image.affine
    if isinstance(image, (tuple, list)) and len(image) == 2:
        return image[0], image[1]
    raise TypeError(f"image must be a Volume or an (array_ijk, affine) pair, got {type(image).__name__}.")


def _check_reference(labels: Any, shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = check_label_array("reference_labels", labels, shape)
    if int(array.max()) >= num_classes:
        raise ValueError(f"reference_labels must have values in [0, {num_classes - 1}] (the model has "
                         f"{num_classes} classes), got {int(array.max())}.")
    return array


def _label_dtype(num_classes: int) -> type:
    return np.uint8 if num_classes <= 256 else np.int16


def attack_single_volume(
    image: Any,
    *,
    model: Any,
    attack: str,
    params: Mapping[str, Any] | None = None,
    reference_labels: np.ndarray | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    attack_mode: str = "tiles",
    overlap: float = 0.5,
    tile_batch_size: int = 4,
    metrics_preset: str = "clinical",
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SingleVolumeResult:
    """Attack one volume given in its own grid and measure the effect.

    Args:
        image: a :class:`~SpectrumAttackLib.io.volumes.Volume` or ``(array_ijk, affine)``: a 3-D scalar array in
            input units (HU for CT) and its 4×4 IJK→RAS matrix. Never modified.
        model: a catalogue name or checkpoint path (loaded on ``device``), or a ``LoadedModel`` (used on its own
            device) whose ``entry`` gives ``classes``, ``num_classes`` and ``preprocessing``.
        attack: registry name (``"saa"``, ``"pgd"``, ...; see :func:`SpectrumAttackLib.attacks.available`).
        params: the attack's parameters (e.g. ``{"steps": 10, "rho": 0.2}``); ``eps``/``std`` on the 0–255 scale.
        reference_labels: ``[I, J, K]`` ground truth in the input grid, values in ``[0, num_classes)``. The attack
            pushes away from it and the metrics compare against it; ``None`` uses the clean prediction.
        device: where a model given by name is loaded: ``"auto"``, ``"cpu"``, ``"cuda"``... Default "auto".
        seed: attack seed (each tile batch adds its index). Default 0.
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

    Returns:
        :class:`SingleVolumeResult`.

    Raises:
        ValueError: the image is not a finite 3-D scalar volume; reference labels of another shape or with
            values outside the model's classes; an unknown attack, parameter, mode or preset.
        Cancelled: ``cancel()`` returned True.

    Example:
        >>> vol = read_volume("ct.nii.gz")
        >>> result = attack_single_volume(vol, model="btcv-unet", attack="saa", params={"steps": 10})
        >>> write_volume("adv.nii.gz", result.adversarial, vol.affine)
    """
    start = time.perf_counter()
    array, affine = _image(image)
    array = check_volume_array("image", array)
    if not np.isfinite(array).all():
        raise ValueError("image must be finite, got NaN or infinite voxels.")
    attack_mode = check_choice("attack_mode", attack_mode, ATTACK_MODES)
    overlap = check_range("overlap", overlap, 0.0, 1.0, high_inclusive=False)
    metrics_preset = check_choice("metrics_preset", getattr(metrics_preset, "value", metrics_preset),
                                  ("clinical", "paper"))
    params = dict(params or {})
    if "seed" in params and params["seed"] != seed:
        raise ValueError(f"params['seed'] must equal seed ({seed!r}) or be left out, got {params['seed']!r}.")
    params["seed"] = seed
    if cancel is not None and not callable(cancel):
        raise TypeError(f"cancel must be callable or None, got {cancel!r}.")

    net, entry = _resolve_model(model, device)
    num_classes = int(_field(entry, "num_classes"))
    classes = _classes(entry)
    prep = _preprocessing(entry)
    roi = prep["roi"]
    grid = _model_grid(net, entry, prep, overlap)
    attacker = attacks.create(attack, net, **params)
    if reference_labels is not None:
        reference_labels = _check_reference(reference_labels, np.shape(array), num_classes)

    device_used = model_device(net)
    images, mapping = grid.to_model_grid(array, affine)
    work = attack_work(attacker, mapping.model_shape, roi, attack_mode, tile_batch_size)
    total = work + 4  # preprocess, clean inference, the attack steps, adversarial inference, metrics

    def report(done: int, stage: str, message: str = "") -> None:
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled before {stage}")
        if progress is not None:
            progress(Progress(done, total, stage, message))

    report(0, "preprocess", f"model grid {list(mapping.model_shape)}")
    report(1, "inference", "clean prediction")
    images = images.to(device_used)
    logits_clean = grid.predict_logits(images)
    seg_clean = logits_clean.argmax(1, keepdim=True)
    labels = seg_clean if reference_labels is None \
        else grid.labels_to_model_grid(reference_labels, mapping).to(device_used)
    report(2, "attack", f"{attack}, {attack_mode}")

    def attack_progress(p: Progress) -> None:
        if progress is not None:
            progress(Progress(2 + p.done, total, p.stage, p.message))

    # nnU-Net's cubic resampling may overshoot the window a little; attacks start from the image in [0, 1].
    attack_input = images.clamp(mapping.b_min, mapping.b_max)
    result = attack_volume(attacker, attack_input, labels, roi=roi, mode=attack_mode,
                           tile_batch_size=tile_batch_size, overlap=overlap, progress=attack_progress, cancel=cancel,
                           window_model=grid.window)
    perturbation_model = (result.adversarial - attack_input)[0, 0] * mapping.intensity_scale
    perturbation = grid.from_model_grid(perturbation_model, mapping, mode="linear").astype(np.float32, copy=False)
    adversarial = np.asarray(array, dtype=np.float32) + perturbation

    report(work + 2, "inference", "prediction on the adversarial volume")
    adv_images, adv_mapping = grid.to_model_grid(adversarial, affine)
    adv_images = adv_images.to(device_used)
    logits_adv = grid.predict_logits(adv_images)
    seg_adv = logits_adv.argmax(1, keepdim=True)

    report(work + 3, "metrics")
    from SpectrumAttackLib.metrics.evaluate import compute_case_metrics  # scikit-image and MONAI metrics

    reference_model = None if reference_labels is None else labels.cpu()
    metrics = compute_case_metrics(
        images[0, 0].cpu(), adv_images[0, 0].cpu(), seg_clean[0, 0].cpu(), seg_adv[0, 0].cpu(),
        labels=None if reference_model is None else reference_model[0, 0], num_classes=num_classes,
        class_names=[c["name"] for c in classes], spacing_mm=mapping.spacing_mm, preset=metrics_preset,
    )
    metrics["seconds"] = result.seconds
    dtype = _label_dtype(num_classes)
    seconds = time.perf_counter() - start
    report(total, "metrics", "done")
    return SingleVolumeResult(
        adversarial=adversarial,
        perturbation=perturbation,
        seg_clean=grid.segmentation(logits_clean, mapping).astype(dtype),
        seg_adv=grid.segmentation(logits_adv, adv_mapping).astype(dtype),
        metrics=metrics,
        classes=classes,
        attack_config=_attack_config(result.config, entry, prep, mapping, attack_mode, overlap, device_used),
        seconds=seconds,
        model_grid={
            "clean": images.cpu(), "adversarial": adv_images.cpu(), "attack_output": result.adversarial.cpu(),
            "seg_clean": seg_clean.cpu(), "seg_adv": seg_adv.cpu(), "labels": reference_model,
            "affine": mapping.model_affine, "spacing_mm": mapping.spacing_mm, "mapping": mapping,
        },
    )


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
