"""The module panel's sections (application only: Qt). Each is a ``ctkCollapsibleButton`` holding its own ``.ui``
file (``Resources/UI``), bound to the module's one parameter node, and calls the Logic facade; the testable work
is in ``SpectrumAttackAdapter``. Order in the panel: Attack, Audit, Harden, then
Compute (``compute.py``: where the jobs run; the Widget builds it, it is not a ``Section``)."""

from SpectrumAttackSections.attack import AttackSection
from SpectrumAttackSections.audit import AuditSection
from SpectrumAttackSections.harden import HardenSection

#: The sections, in panel order.
SECTIONS = (AttackSection, AuditSection, HardenSection)

__all__ = ["SECTIONS"]
