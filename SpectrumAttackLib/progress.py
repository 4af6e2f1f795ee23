"""The progress report every long-running job sends and the exception of a cancelled one (torch-free: the remote
client uses them too)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Cancelled", "Progress", "ProgressCallback"]


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


class Cancelled(Exception):  # noqa: N818 - the name says what happened, as in asyncio.CancelledError
    """Raised when the caller's ``cancel()`` returned True; the job stopped between steps (locally, or on the
    server of a remote run)."""
