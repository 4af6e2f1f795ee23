"""Jobs shared by the CLI, the Slicer module and the demo."""

from SpectrumAttackLib.inference.tiles import Cancelled
from SpectrumAttackLib.workflows.single import SingleVolumeResult, attack_single_volume

__all__ = ["Cancelled", "SingleVolumeResult", "attack_single_volume"]
