"""Training cases held in memory, in the shape :func:`SpectrumAttackLib.training.loop.train` reads.

``spectrum-attack train`` feeds the loop a MONAI ``DataLoader`` over files; ``workflows.harden`` has a handful of
volumes already mapped to the model grid (from Slicer's scene or files) and feeds it these instead:

- :class:`CropBatches`: one batch per pass (the loop's "epoch" becomes one optimiser step): one case picked at
  random, ``crops`` random ROI crops of it, half centred on a labelled voxel and half anywhere (MONAI's
  ``RandCropByPosNegLabeld`` with pos 1, neg 1, as the training transforms). No other augmentation: fine-tuning
  starts from a trained model and its few steps should see the data as it is.
- :class:`WholeCases`: the validation volumes, whole.

Each case may carry a ``prepare`` callback, run before its batch or validation pass reaches the model: nnU-Net
z-score models normalise every image with its own statistics, set into the model's normalisation layer there.
Every random draw of pass ``n`` comes from ``(seed, n)``, never from the global generators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from SpectrumAttackLib.checks import check_int
from SpectrumAttackLib.runtime import make_generator
from SpectrumAttackLib.training.seeding import derive_seed

__all__ = ["CropBatches", "MemoryCase", "WholeCases"]

_CROP_STREAM = 7


@dataclass(frozen=True)
class MemoryCase:
    """One case in the model grid.

    Attributes:
        images: ``[1, 1, H, W, D]`` float32 (the model's input scale, [0, 1] after the intensity window).
        labels: ``[1, 1, H, W, D]`` int64 class ids.
        pad_value: the image value used where crops reach past the volume (the window's low end, or what nnU-Net
            pads with).
        prepare: called before the case's voxels reach the model (or None).
        name: shown in messages.
    """

    images: torch.Tensor
    labels: torch.Tensor
    pad_value: float = 0.0
    prepare: Callable[[], None] | None = None
    name: str = "case"

    def padded(self, roi: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``images``, ``labels`` padded at the far end of each axis up to at least ``roi``."""
        pads: list[int] = []
        for size, edge in reversed(list(zip(self.images.shape[2:], roi, strict=True))):
            pads += [0, max(int(edge) - int(size), 0)]
        if not any(pads):
            return self.images, self.labels
        return (F.pad(self.images, pads, value=float(self.pad_value)), F.pad(self.labels, pads, value=0))


class CropBatches:
    """A sized iterable of one batch ``{"image": [B, 1, *roi], "label": [B, 1, *roi]}`` per pass.

    Args:
        cases: the training cases (at least one).
        roi: crop size ``(h, w, d)`` in voxels.
        crops: crops per batch ``B``, ≥ 1.
        seed: seeds pass ``n``'s draws with ``(seed, n)``.
    """

    def __init__(self, cases: Sequence[MemoryCase], roi: Sequence[int], crops: int, seed: int) -> None:
        from monai.transforms import RandCropByPosNegLabeld

        if not cases:
            raise ValueError("cases must hold at least one training case, got none.")
        self.cases = [(case, *case.padded(roi)) for case in cases]
        self.crops = check_int("crops", crops, 1)
        self.seed = int(seed)
        self.passes = 0
        self.cropper = RandCropByPosNegLabeld(keys=("image", "label"), label_key="label",
                                              spatial_size=tuple(int(r) for r in roi), pos=1, neg=1,
                                              num_samples=self.crops, allow_smaller=False)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        value = derive_seed(self.seed, _CROP_STREAM, self.passes)
        self.passes += 1
        pick = int(torch.randint(len(self.cases), (1,), generator=make_generator(value)))
        case, images, labels = self.cases[pick]
        self.cropper.set_random_state(seed=derive_seed(value, 1))
        samples = self.cropper({"image": images[0], "label": labels[0]})
        if case.prepare is not None:
            case.prepare()
        yield {"image": torch.stack([torch.as_tensor(s["image"]) for s in samples]),
               "label": torch.stack([torch.as_tensor(s["label"]) for s in samples])}


class WholeCases:
    """The validation cases whole, ``{"image": [1, 1, H, W, D], "label": [1, 1, H, W, D]}`` each, prepared in turn."""

    def __init__(self, cases: Sequence[MemoryCase]) -> None:
        self.cases = list(cases)

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for case in self.cases:
            if case.prepare is not None:
                case.prepare()
            yield {"image": case.images, "label": case.labels}
