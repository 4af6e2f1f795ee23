"""nnU-Net v2's inference around an :class:`~SpectrumAttackLib.models.nnunet.NnUNetEnsemble`, step by step.

For one image given as ``(array_ijk, affine)`` (what :func:`SpectrumAttackLib.io.volumes.read_volume` returns),
:meth:`NnUNetInference.to_model_grid` reproduces ``nnUNetPredictor``'s preprocessing with nnU-Net's own functions:

1. the reader's array layout: the reorienting readers' ``as_reoriented(io_orientation(affine))``, then the axis
   reversal of SimpleITK / nibabel readers (``[x, y, z] → [z, y, x]``, spacing reversed with it);
2. the plans' ``transpose_forward``;
3. ``crop_to_nonzero`` (bounding box of the non-zero voxels, holes filled);
4. the intensity window onto [0, 1] (CT: nnU-Net's clip range, the foreground 0.5 / 99.5 percentiles; z-score:
   the cropped image's own min / max, with its mean / std set into the model's normalisation layer);
5. the configuration's ``resampling_fn_data`` to ``compute_new_shape(...)`` at the configuration spacing.

nnU-Net normalises before resampling; here the window comes first and the rest of the normalisation (an affine
map) is the model's fixed first layer. Both resampling and that map are linear and keep constants, so the two
orders give the same network input up to float32 rounding (a few 1e-7). nnU-Net's float16 blend can magnify that
rounding where its summed Gaussian weight ``w`` is subnormal in float16 (window corners at the volume's borders): a
logit there moves by one accumulator step, 2⁻²⁴ / w (0.08 at w = 7e-7). The cubic resampling may overshoot [0, 1]
a little near sharp edges; the clean prediction keeps those values (as nnU-Net does) and attacks start from the
image clipped to [0, 1].

:class:`NnUNetSlidingWindow` is nnU-Net's sliding window as a differentiable module: pad with 0 (in normalised
units) up to the patch, windows at ``compute_steps_for_sliding_window`` with the tile step, each weighted with
``compute_gaussian(patch, 1/8, 10)`` (nnU-Net's float16 map), blended by the summed weights. Predictions (no
gradients) accumulate the blend in float16 as nnU-Net does; attacks (gradients) accumulate in the images' dtype.

:meth:`NnUNetInference.segmentation` is nnU-Net's export, ``convert_predicted_logits_to_segmentation_with_correct_
shape`` (logits resampled back with ``resampling_fn_probabilities``, argmax, put into the crop box, transposed
back), followed by the reader's layout undone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation
from torch import nn

from SpectrumAttackLib.checks import check_choice, check_range
from SpectrumAttackLib.inference.geometry import (
    _check_affine,
    check_label_array,
    check_volume_array,
    model_grid_array,
)
from SpectrumAttackLib.inference.sliding import check_images
from SpectrumAttackLib.models.nnunet import NnUNetEnsemble, NnUNetPreprocessing

__all__ = ["NnUNetInference", "NnUNetMapping", "NnUNetSlidingWindow"]

#: nnU-Net's Gaussian importance: sigma = patch / 8, peak value 10.
_SIGMA_SCALE = 1.0 / 8
_PEAK = 10.0


@dataclass(frozen=True, eq=False)
class NnUNetMapping:
    """How one image maps to an nnU-Net configuration's grid; built by :meth:`NnUNetInference.to_model_grid`.

    Attributes:
        input_shape, input_affine: the input array's ``(I, J, K)`` and 4×4 IJK→RAS matrix.
        orientation: nibabel orientation the reader applies (reorienting readers), else None.
        order: reader-array axis that becomes nnU-Net axis ``m`` (axis reversal and ``transpose_forward``).
        reader_spacing: voxel size of the reader's array in its own (reversed) axis order, mm (nnU-Net's
            ``properties["spacing"]``).
        transposed_shape: shape in nnU-Net's axis order before cropping.
        bbox: ``[[low, high), ...]`` of ``crop_to_nonzero`` in that order.
        cropped_spacing: voxel size of the cropped grid along nnU-Net's axes, mm.
        model_shape, spacing_mm: the configuration grid (nnU-Net's axes) and its voxel size in mm.
        model_affine: 4×4 IJK→RAS matrix of the model grid (for reports).
        resampled: False when the configuration spacing is the image's (no interpolation).
        a_min, a_max: the intensity window mapped onto [0, 1], input units (HU for CT).
        mean, std: the normalisation statistics (the dataset's for CT, the image's for z-score), input units.
        b_min, b_max: 0 and 1.
    """

    input_shape: tuple[int, int, int]
    input_affine: np.ndarray
    orientation: np.ndarray | None
    order: tuple[int, int, int]
    reader_spacing: tuple[float, float, float]
    transposed_shape: tuple[int, int, int]
    bbox: tuple[tuple[int, int], ...]
    cropped_spacing: tuple[float, float, float]
    model_shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    model_affine: np.ndarray
    resampled: bool
    a_min: float
    a_max: float
    mean: float
    std: float
    b_min: float = 0.0
    b_max: float = 1.0

    @property
    def cropped_shape(self) -> tuple[int, ...]:
        """Shape of the cropped grid (nnU-Net's ``shape_after_cropping_and_before_resampling``)."""
        return tuple(high - low for low, high in self.bbox)

    @property
    def intensity_scale(self) -> float:
        """Input units per [0, 1] unit, ``a_max − a_min`` (e.g. the HU span of the CT clip range)."""
        return (self.a_max - self.a_min) / (self.b_max - self.b_min)

    def properties(self) -> dict[str, Any]:
        """The ``properties`` dict nnU-Net's export functions read."""
        return {
            "spacing": list(self.reader_spacing),
            "shape_before_cropping": self.transposed_shape,
            "bbox_used_for_cropping": [list(b) for b in self.bbox],
            "shape_after_cropping_and_before_resampling": self.cropped_shape,
        }


class NnUNetSlidingWindow(nn.Module):
    """nnU-Net's sliding-window prediction of a whole volume, differentiable with respect to the input.

    Args:
        model: the ensemble (normalisation layer + folds).
        patch_size: window size ``(h, w, d)`` in voxels (the configuration's patch size).
        tile_step_size: step between windows as a fraction of the patch, ``0 < step <= 1`` (nnU-Net: 0.5).
        use_gaussian: Gaussian importance weighting (nnU-Net's default); else a plain mean.

    Shape: ``[B, 1, H, W, D]`` in [0, 1] → logits ``[B, K, H, W, D]`` (any size; smaller than the patch is padded
    with normalised 0 and cropped back, as nnU-Net does).
    """

    def __init__(self, model: NnUNetEnsemble, patch_size: Sequence[int], tile_step_size: float = 0.5,
                 use_gaussian: bool = True) -> None:
        super().__init__()
        if not isinstance(model, NnUNetEnsemble):
            raise TypeError(f"model must be an NnUNetEnsemble, got {type(model).__name__}.")
        self.model = model
        self.patch_size = tuple(int(p) for p in patch_size)
        self.tile_step_size = check_range("tile_step_size", tile_step_size, 0.0, 1.0, low_inclusive=False)
        self.use_gaussian = bool(use_gaussian)

    def window_count(self, shape: Sequence[int]) -> int:
        """Windows placed on a volume of spatial ``shape``."""
        from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window

        padded = [max(int(s), p) for s, p in zip(shape, self.patch_size, strict=True)]
        return int(np.prod([len(s) for s in compute_steps_for_sliding_window(padded, self.patch_size,
                                                                            self.tile_step_size)]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        return self.blend_normalised(self.model.intensity(images))

    def blend_normalised(self, normalised: torch.Tensor) -> torch.Tensor:
        """The sliding window on already normalised images ``[B, 1, H, W, D]`` (nnU-Net's network input, what
        ``nnUNetPredictor.predict_sliding_window_return_logits`` takes); logits ``[B, K, H, W, D]``."""
        from acvl_utils.cropping_and_padding.padding import pad_nd_image
        from nnunetv2.inference.sliding_window_prediction import compute_gaussian, compute_steps_for_sliding_window

        check_images(normalised)
        padded, revert = pad_nd_image(normalised, self.patch_size, "constant", {"value": 0}, True)
        steps = compute_steps_for_sliding_window(padded.shape[2:], self.patch_size, self.tile_step_size)
        if self.use_gaussian:
            # nnU-Net's half-precision map (its tails, and hence the blend near window edges, depend on it)
            weight = compute_gaussian(self.patch_size, _SIGMA_SCALE, _PEAK, dtype=torch.float16,
                                      device=normalised.device).to(normalised.dtype)
        else:
            weight = torch.ones(self.patch_size, dtype=normalised.dtype, device=normalised.device)
        # Without gradients the blend is accumulated in float16 as nnU-Net does (it loses precision where the
        # Gaussian is tiny, at the volume's borders, and matching it keeps predictions equal); with gradients
        # (attacks) in the input's dtype.
        accumulate = normalised.dtype if torch.is_grad_enabled() else torch.float16
        logits: torch.Tensor | None = None
        total = torch.zeros(padded.shape[2:], dtype=accumulate, device=normalised.device)
        for start in ((x, y, z) for x in steps[0] for y in steps[1] for z in steps[2]):
            window = tuple(slice(s, s + p) for s, p in zip(start, self.patch_size, strict=True))
            prediction = self.model.predict_normalised(padded[(slice(None), slice(None), *window)]) * weight
            if logits is None:
                logits = prediction.new_zeros((*prediction.shape[:2], *padded.shape[2:]), dtype=accumulate)
            logits[(slice(None), slice(None), *window)] += prediction
            total[window] += weight.to(accumulate)
        assert logits is not None  # at least one window
        return (logits / total).to(normalised.dtype)[(slice(None), slice(None), *revert[2:])]

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, tile_step_size={self.tile_step_size}, gaussian={self.use_gaussian}"


class NnUNetInference:
    """nnU-Net's preprocessing, sliding window and export for one loaded model (see the module docstring).

    Args:
        model: the loaded :class:`NnUNetEnsemble`.
        preprocessing: its :class:`NnUNetPreprocessing` (``loaded.entry.preprocessing``).
        overlap: window overlap; nnU-Net's tile step is ``1 − overlap``. Default 0.5 (nnU-Net's step 0.5).

    Example:
        >>> loaded = load_model("…/nnUNetTrainer__nnUNetPlans__3d_fullres", folds=[0])
        >>> run = NnUNetInference(loaded.model, loaded.entry.preprocessing)
        >>> images, mapping = run.to_model_grid(volume.array, volume.affine)
        >>> seg = run.segmentation(run.predict_logits(images), mapping)   # [I, J, K] in the input grid
    """

    def __init__(self, model: NnUNetEnsemble, preprocessing: NnUNetPreprocessing, overlap: float = 0.5) -> None:
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        if not isinstance(model, NnUNetEnsemble):
            raise TypeError(f"model must be an NnUNetEnsemble, got {type(model).__name__}.")
        if not isinstance(preprocessing, NnUNetPreprocessing):
            raise TypeError(f"preprocessing must be an NnUNetPreprocessing, got {type(preprocessing).__name__}.")
        overlap = check_range("overlap", overlap, 0.0, 1.0, high_inclusive=False)
        self.model = model
        self.preprocessing = preprocessing
        self.plans = PlansManager(preprocessing.plans)
        self.configuration = self.plans.get_configuration(preprocessing.configuration)
        self.labels = self.plans.get_label_manager(preprocessing.dataset)
        self.window = NnUNetSlidingWindow(model, preprocessing.roi, 1.0 - overlap)

    # ------------------------------------------------------------------------------------- input → model grid
    def _reader_array(self, array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray | None,
                                                                             np.ndarray]:
        """The reader's view before its axis reversal: ``(array, orientation or None, its IJK→RAS matrix)``."""
        if not self.preprocessing.reader.endswith("WithReorient"):
            return array, None, affine
        orientation = io_orientation(affine)
        return apply_orientation(array, orientation), orientation, affine @ inv_ornt_aff(orientation, array.shape)

    def _order(self) -> tuple[int, int, int]:
        reverse = (2, 1, 0)
        return tuple(reverse[t] for t in self.preprocessing.transpose_forward)  # type: ignore[return-value]

    def _to_transposed(self, array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray | None,
                                                                              tuple[float, ...]]:
        reader, orientation, reader_affine = self._reader_array(array, affine)
        zooms = np.linalg.norm(reader_affine[:3, :3], axis=0)
        return np.transpose(reader, self._order()), orientation, tuple(float(z) for z in zooms[::-1])

    def to_model_grid(self, array_ijk: np.ndarray, affine: np.ndarray) -> tuple[torch.Tensor, NnUNetMapping]:
        """Map an image to the configuration's grid and window it onto [0, 1].

        Args:
            array_ijk: ``[I, J, K]`` image in input units (HU for CT); not modified.
            affine: its 4×4 IJK→RAS matrix (mm).

        Returns:
            ``images [1, 1, H, W, D]`` float32 on the CPU (in [0, 1] up to the resampling's overshoot) and the
            :class:`NnUNetMapping`. The model's normalisation layer is set to this image's window and statistics
            (see :meth:`use`).

        Raises:
            ValueError: not a finite 3-D scalar array, or a bad affine.
        """
        from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero
        from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

        array = check_volume_array("image", array_ijk)
        if not np.isfinite(array).all():
            raise ValueError("image must be finite, got NaN or infinite voxels.")
        matrix = _check_affine(affine)
        transposed, orientation, reader_spacing = self._to_transposed(array, matrix)
        order = self._order()
        data = transposed.astype(np.float32)[None]
        cropped, _, bbox = crop_to_nonzero(data)
        spacing = tuple(reader_spacing[t] for t in self.preprocessing.transpose_forward)
        target = tuple(float(s) for s in self.configuration.spacing)
        if self.preprocessing.normalisation == "CTNormalization":
            low, high = self.preprocessing.a_min, self.preprocessing.a_max
            mean, std = self.preprocessing.intensity["mean"], self.preprocessing.intensity["std"]
        else:
            low, high = float(cropped.min()), float(cropped.max())
            high = high if high > low else low + 1.0
            mean, std = float(cropped.mean()), float(cropped.std())
        self.model.intensity.set_window(low, high, mean, std)
        windowed = np.clip((cropped - np.float32(low)) / np.float32(high - low), 0.0, 1.0)
        new_shape = tuple(int(n) for n in compute_new_shape(cropped.shape[1:], spacing, target))
        resampled = new_shape != tuple(cropped.shape[1:])
        if resampled:
            windowed = self.configuration.resampling_fn_data(windowed, new_shape, spacing, target)
        images = torch.from_numpy(np.ascontiguousarray(windowed, dtype=np.float32))[None]
        box = tuple((int(b[0]), int(b[1])) for b in bbox)
        mapping = NnUNetMapping(
            input_shape=tuple(array.shape), input_affine=matrix, orientation=orientation, order=order,
            reader_spacing=reader_spacing, transposed_shape=tuple(transposed.shape), bbox=box,
            cropped_spacing=spacing, model_shape=new_shape, spacing_mm=target,
            model_affine=self._model_affine(matrix, array.shape, orientation, order, box, cropped.shape[1:],
                                            new_shape),
            resampled=resampled, a_min=float(low), a_max=float(high), mean=mean, std=std,
        )  # fmt: skip
        return images, mapping

    def use(self, mapping: NnUNetMapping) -> None:
        """Set the model's normalisation layer to ``mapping``'s window and statistics (z-score models normalise
        each image with its own; CT models always use the dataset's)."""
        self.model.use(mapping)

    @staticmethod
    def _model_affine(affine: np.ndarray, shape: Sequence[int], orientation: np.ndarray | None,
                      order: Sequence[int], bbox: Sequence[tuple[int, int]], cropped: Sequence[int],
                      model: Sequence[int]) -> np.ndarray:
        """IJK→RAS of the model grid: resize (pixel centres aligned) → crop offset → axis order → reader layout."""
        resize = np.eye(4)
        for m, (c, n) in enumerate(zip(cropped, model, strict=True)):
            resize[m, m] = c / n
            resize[m, 3] = 0.5 * c / n - 0.5 + bbox[m][0]
        permute = np.zeros((4, 4))
        permute[3, 3] = 1.0
        for m, axis in enumerate(order):
            permute[axis, m] = 1.0
        unorient = np.eye(4) if orientation is None else inv_ornt_aff(orientation, shape)
        return affine @ unorient @ permute @ resize

    def labels_to_model_grid(self, labels_ijk: np.ndarray, mapping: NnUNetMapping) -> torch.Tensor:
        """Map an integer label map of the input grid to the model grid with nnU-Net's ``resampling_fn_seg``.

        Returns:
            ``[1, 1, H, W, D]`` int64 on the CPU.
        """
        labels = check_label_array("labels", labels_ijk, mapping.input_shape)
        transposed, _, _ = self._to_transposed(labels, mapping.input_affine)
        cropped = transposed[tuple(slice(low, high) for low, high in mapping.bbox)][None]
        if mapping.resampled:
            cropped = self.configuration.resampling_fn_seg(cropped, mapping.model_shape, mapping.cropped_spacing,
                                                           mapping.spacing_mm)
        return torch.from_numpy(np.ascontiguousarray(cropped, dtype=np.int64))[None]

    # ------------------------------------------------------------------------------------- model grid → input
    def _to_input(self, transposed: np.ndarray, mapping: NnUNetMapping) -> np.ndarray:
        """Undo the axis order and the reader's reorientation on the last three axes."""
        lead = transposed.ndim - 3
        inverse = np.argsort(mapping.order)
        reader = np.transpose(transposed, (*range(lead), *(lead + int(i) for i in inverse)))
        if mapping.orientation is None:
            return np.ascontiguousarray(reader)
        back = np.stack([apply_orientation(c, _inverse(mapping.orientation)) for c in reader.reshape(
            -1, *reader.shape[lead:])])
        return np.ascontiguousarray(back.reshape(*reader.shape[:lead], *back.shape[1:]))

    def from_model_grid(self, volume: np.ndarray | torch.Tensor, mapping: NnUNetMapping, *,
                        mode: str = "nearest") -> np.ndarray:
        """Map a model-grid volume back to the input grid (0 outside the crop box).

        Args:
            volume: ``[H, W, D]`` or ``[C, H, W, D]`` (numpy or torch).
            mapping: from :meth:`to_model_grid`.
            mode: ``"nearest"`` (label maps: ``resampling_fn_seg``) or ``"linear"`` (intensities, e.g. a
                perturbation: ``resampling_fn_data``). Without resampling both are exact.

        Returns:
            ``[I, J, K]`` (or ``[C, I, J, K]``) in the input grid.
        """
        mode = check_choice("mode", mode, ("nearest", "linear"))
        volume = model_grid_array(volume, mapping.model_shape)
        channels = volume.reshape(-1, *mapping.model_shape)
        if mapping.resampled:
            resample = self.configuration.resampling_fn_data if mode == "linear" \
                else self.configuration.resampling_fn_seg
            source = channels.astype(np.float32) if mode == "linear" else channels
            channels = resample(source, mapping.cropped_shape, mapping.spacing_mm, mapping.cropped_spacing)
            channels = channels.astype(np.float32 if mode == "linear" else volume.dtype, copy=False)
        full = np.zeros((channels.shape[0], *mapping.transposed_shape), dtype=channels.dtype)
        full[(slice(None), *(slice(low, high) for low, high in mapping.bbox))] = channels
        return self._to_input(full.reshape(*volume.shape[:-3], *mapping.transposed_shape), mapping)

    def segmentation(self, logits: torch.Tensor, mapping: NnUNetMapping) -> np.ndarray:
        """nnU-Net's export of model-grid logits ``[1, K, H, W, D]`` to a label map ``[I, J, K]`` of the input grid."""
        from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape

        seg = convert_predicted_logits_to_segmentation_with_correct_shape(
            logits[0].detach().float().cpu(), self.plans, self.configuration, self.labels, mapping.properties(),
            num_threads_torch=torch.get_num_threads(),
        )  # fmt: skip
        # nnU-Net returns the reader's (reversed) layout; back to nnU-Net's axis order, then to the input's.
        reader = np.transpose(np.asarray(seg), (2, 1, 0))
        return self._to_input(np.transpose(reader, mapping.order), mapping)

    # ----------------------------------------------------------------------------------------------- predict
    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Model-grid logits ``[B, K, H, W, D]`` of ``images`` ``[B, 1, H, W, D]`` by nnU-Net's sliding window,
        without gradients, on the model's device."""
        device = next(self.model.parameters()).device
        with torch.no_grad():
            return self.window(images.to(device))

    def predict(self, array_ijk: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, torch.Tensor, NnUNetMapping]:
        """``(segmentation [I, J, K], model-grid logits [1, K, H, W, D], mapping)`` of one image, as
        ``nnUNetPredictor`` computes them."""
        images, mapping = self.to_model_grid(array_ijk, affine)
        logits = self.predict_logits(images)
        return self.segmentation(logits, mapping), logits, mapping


def _inverse(orientation: np.ndarray) -> np.ndarray:
    """The nibabel orientation that undoes ``apply_orientation(·, orientation)``."""
    inverse = np.zeros_like(orientation)
    for axis, (target, flip) in enumerate(orientation):
        inverse[int(target)] = (axis, flip)
    return inverse
