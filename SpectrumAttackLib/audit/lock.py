"""One audit at a time per output folder: an advisory lock held on a file beside the output for the whole run.

Two audits into one ``--output`` would share its staging folder (``.<output>.audit-partial``): the second would
wipe the first's records. The lock file ``.<output>.audit-lock`` beside the output is locked with
``fcntl.flock`` (POSIX) or ``msvcrt.locking`` (Windows) before the staging folder is touched and removed when the
audit ends; the operating system releases the lock when the process ends, however it ends, so a killed audit
never blocks the next one (its empty lock file is then reused).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["OutputLock"]


class OutputLock:
    """An exclusive, non-blocking lock on ``.<folder name>.audit-lock`` beside ``folder``.

    Args:
        folder: the audit's output folder (its parent must exist).
        flag: the setting's name in the refusal (``"--output"``).

    Raises:
        ValueError: another process holds the lock, or the lock file cannot be created (one line naming the
            folder).
    """

    def __init__(self, folder: Path, flag: str = "--output") -> None:
        self.path = folder.parent / f".{folder.name}.audit-lock"
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ValueError(f"{flag} must be writable, got {str(folder)!r} ({exc.strerror or exc}).") from None
        try:
            self._lock()
            # the holder before us may have removed the file between our open and our lock: ours is then stale
            if os.fstat(self._fd).st_ino != os.stat(self.path).st_ino:
                raise OSError("lock file replaced")
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise ValueError(f"{flag} must not be in use by another audit, got {str(folder)!r}, which another "
                             f"running audit is writing (wait for it to finish or choose another folder).") from None

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            msvcrt.locking(self._fd, msvcrt.LK_NBLCK, 1)
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        """Remove the lock file and release the lock (closing the file releases it on every system)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # Windows removes no open file: close first
            os.close(fd)
            self.path.unlink(missing_ok=True)
            return
        os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
