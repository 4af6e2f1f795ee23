"""The progress report every long-running job sends (torch-free: the remote client uses it too)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback"]


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Attributes:
        done: units of work finished (attack steps, tiles, cases, epochs).
        total: units of work in the job.
        stage: a short name of what is running ("attack", "inference", "train").
        message: optional human-readable detail (current loss, case name).
    """

    done: int
    total: int
    stage: str = ""
    message: str = ""

    @property
    def fraction(self) -> float:
        """Completed fraction in [0, 1]."""
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]
