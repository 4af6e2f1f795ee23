"""Whole-volume work: sliding-window prediction, whole-volume attacks, and the mapping to and from the model grid."""

from SpectrumAttackLib.inference.geometry import GridMapping, from_model_grid, labels_to_model_grid, to_model_grid
from SpectrumAttackLib.inference.sliding import SlidingWindowModel, predict_logits
from SpectrumAttackLib.inference.tiles import Cancelled, VolumeAttackResult, attack_volume, tile_slices

__all__ = [
    "Cancelled",
    "GridMapping",
    "SlidingWindowModel",
    "VolumeAttackResult",
    "attack_volume",
    "from_model_grid",
    "labels_to_model_grid",
    "predict_logits",
    "tile_slices",
    "to_model_grid",
]
