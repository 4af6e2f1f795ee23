"""Jobs shared by the CLI, the Slicer module and the demo: one attacked volume, and the robustness audit."""

from SpectrumAttackLib.inference.tiles import Cancelled
from SpectrumAttackLib.workflows.robustness import AuditResult, audit
from SpectrumAttackLib.workflows.single import SingleVolumeResult, attack_single_volume

__all__ = ["AuditResult", "Cancelled", "SingleVolumeResult", "attack_single_volume", "audit"]
