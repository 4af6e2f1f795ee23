"""SIGTERM handled like SIGINT: both raise ``KeyboardInterrupt`` in the main thread, so the staged writer's
cleanup (``except BaseException`` / context managers) runs and a killed run leaves nothing behind.

Used by ``spectrum-attack`` and the Slicer CLI module around a whole run. SIGKILL cannot be caught; a run killed
that way may leave a hidden ``.partial-*`` staging folder, never a half-written output at its destination.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["terminate_as_interrupt"]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` as SIGINT does (main thread only; elsewhere a
    no-op). The previous handler is restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
