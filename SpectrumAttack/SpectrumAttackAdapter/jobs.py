"""Background jobs of one Logic, stopped when their scene closes.

Slicer reuses node IDs after File > Close Scene, so a job still running when its scene closes would write its
results into unrelated nodes of the next scene. Every job started by the Logic (GUI or console, ``wait=False``)
is registered here; the scene's ``StartCloseEvent`` cancels them all. Plain VTK observers: tested on slicer-core.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["SceneJobs"]


class SceneJobs:
    """The running jobs of a Logic, each with the scene it writes into."""

    def __init__(self) -> None:
        self._jobs: list[tuple[Any, Any]] = []
        self._observed: dict[int, tuple[Any, int]] = {}

    def add(self, scene: Any, job: Any) -> Any:
        """Track ``job`` (anything with ``cancel()``); cancelled when ``scene`` starts closing. Returns ``job``."""
        key = id(scene)
        if key not in self._observed:
            tag = scene.AddObserver(scene.StartCloseEvent, lambda caller, event: self.cancel_all(caller))
            self._observed[key] = (scene, tag)
        self._jobs.append((scene, job))
        return job

    def track(self, scene: Any, job: Any, on_finished: Any) -> Any:
        """:meth:`add` a job that has an ``on_finished`` attribute (its callback): when it finishes it is
        forgotten, then its own callback and ``on_finished(*result)`` are called. Returns ``job``."""
        previous = job.on_finished

        def finished(*args: Any) -> None:
            self.discard(job)
            if previous is not None:
                previous(*args)
            if on_finished is not None:
                on_finished(*args)

        job.on_finished = finished
        return self.add(scene, job)

    def discard(self, job: Any) -> None:
        """Forget a finished job."""
        self._jobs = [(s, j) for s, j in self._jobs if j is not job]

    def running(self) -> list[Any]:
        """The tracked jobs."""
        return [job for _, job in self._jobs]

    def cancel_all(self, scene: Any = None) -> None:
        """Cancel every job (of ``scene`` only, when given)."""
        for owner, job in list(self._jobs):
            if scene is None or owner is scene:
                logging.info("SpectrumAttack: the scene closes; cancelling a background run")
                job.cancel()
                self.discard(job)
