"""The module's jobs on a SpectrumAttack server (``spectrum-attack serve``), torch-free.

The input volume goes up once (IJK array + IJK→RAS matrix, ``SpectrumAttackLib.remote.protocol``), the server
runs the same engine function as a local run, and the results come back as the same
``SpectrumAttackLib.pipeline.results`` objects; they are written into the scene by the same functions as a local
run's (``results.write_result``, ``audit_nodes.audit_nodes``), so the nodes, names, colours and tables are the
same. Progress is the server's; Cancel cancels the job on the server.

Two ways to run an attack: :func:`run_attack` waits (the console API, tests); :class:`RemoteAttackJob` polls
from Qt's event loop so the GUI stays responsive (the Apply button), with the interface of ``clijob.CLIJob``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from SpectrumAttackAdapter.arguments import EngineArguments
from SpectrumAttackAdapter.compute import Backend
from SpectrumAttackAdapter.results import SpectrumAttackResult, write_result
from SpectrumAttackAdapter.segmentations import reference_labels
from SpectrumAttackAdapter.volumes import array_ijk, same_geometry, volume_to_ijk

__all__ = ["RemoteAttackJob", "attack_on_server", "audit_on_server", "run_attack", "run_audit", "start_attack"]

#: how often the GUI asks the server for progress.
POLL_MS = 500


def _is_file(model: Any) -> bool:
    return isinstance(model, (str, Path)) and Path(str(model)).expanduser().is_file()


def _model_options(arguments: EngineArguments) -> dict[str, Any] | None:
    """``model_options`` of the client for a weights file (architecture, class count, build keywords)."""
    if not _is_file(arguments.model):
        return None
    options = {"architecture": arguments.architecture, "num_classes": arguments.num_classes}
    options.update(arguments.model_arguments or {})
    return {k: v for k, v in options.items() if v is not None}


def _classes(session: Any, model: Any, num_classes: int | None) -> list[dict[str, Any]]:
    """The model's classes, for matching reference segments by name: the server's catalogue entry, or
    ``class_0``... for a weights file (the names the engine gives a model file without class names)."""
    if _is_file(model):
        return [{"id": i, "name": f"class_{i}", "rgb": [0, 0, 0]} for i in range(int(num_classes or 0))]
    for entry in session.capabilities()["models"]:
        if entry["name"] == model:
            return entry["classes"]
    names = ", ".join(repr(e["name"]) for e in session.capabilities()["models"])
    raise ValueError(f"model must be one of {names} (the server's catalogue) or a weights file, got {model!r}.")


def _reference(scene: Any, node: Any, input_volume: Any, classes: list[dict[str, Any]]) -> np.ndarray | None:
    """Reference class ids on the input grid. A labelmap on the input's grid is sent as it is: the server's
    engine checks it, with the same words as a local run (``referenceSegmentation must hold class ids ...``)."""
    if node is None:
        return None
    if node.IsA("vtkMRMLLabelMapVolumeNode") and same_geometry(node, input_volume):
        return np.array(array_ijk(node))
    return reference_labels(scene, node, input_volume, classes)


def start_attack(scene: Any, input_volume: Any, arguments: EngineArguments, reference_node: Any,
                 session: Any) -> str:
    """Upload the input (and reference) and queue the attack on the server; returns the job id."""
    array, ijk_to_ras = volume_to_ijk(input_volume)
    reference = None
    if reference_node is not None:
        classes = _classes(session, arguments.model, arguments.num_classes)
        reference = _reference(scene, reference_node, input_volume, classes)
    return session.start_attack(
        (array, ijk_to_ras), model=str(arguments.model), attack=arguments.attack, params=arguments.params,
        reference_labels=reference, seed=arguments.seed, precision=arguments.precision,
        model_options=_model_options(arguments), image_name="inputVolume", labels_name="referenceSegmentation")


def run_attack(scene: Any, input_volume: Any, arguments: EngineArguments, reference_node: Any, server: Backend, *,
               on_progress: Callable[[Any], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> SpectrumAttackResult:
    """Attack ``input_volume`` on the server and add the results to the scene (waits for the job).

    Args:
        arguments: from ``arguments.engine_arguments`` (the model is a name of the server's catalogue or a local
            weights file, uploaded; the server chooses the device).
        on_progress: called with ``SpectrumAttackLib.progress.Progress`` (the server's).
        cancel: polled between status calls; True cancels the job on the server.

    Raises:
        SpectrumAttackLib.progress.Cancelled: cancelled; no node was added.
        ValueError: bad input (the engine's words); ``SpectrumAttackLib.remote`` errors for the server.
    """
    start = time.perf_counter()
    with server.session() as session:
        job_id = start_attack(scene, input_volume, arguments, reference_node, session)
        try:
            session.wait(job_id, progress=on_progress, cancel=cancel)
        except BaseException:
            session.forget(job_id)
            raise
        result = session.attack_result(job_id, seconds=time.perf_counter() - start)
    return write_result(scene, input_volume, result, arguments.attack)


def run_audit(scene: Any, input_volume: Any, models: Any, preset: Any, reference_node: Any, server: Backend, *,
              seed: int = 0, precision: str = "auto", metrics_preset: str = "clinical", output: str | None = None,
              on_progress: Callable[[Any], None] | None = None) -> Any:
    """The robustness audit of ``input_volume`` on the server; returns its ``AuditResult`` (the Logic adds the
    same table and chart nodes as for a local audit).

    Args:
        models: a catalogue name of the server or a weights file, a list of them, or a dict label → model.
        preset: ``"quick"``, ``"standard"``, ``"paper"`` or a grid dictionary.
    """
    array, ijk_to_ras = volume_to_ijk(input_volume)
    with server.session() as session:
        reference = None
        if reference_node is not None:
            first = next(iter(models.values())) if isinstance(models, Mapping) else (
                models[0] if isinstance(models, (list, tuple)) else models)
            reference = _reference(scene, reference_node, input_volume, _classes(session, first, None))
        return session.audit((array, ijk_to_ras), models=models, labels=reference, grid=preset, output=output,
                             seed=seed, precision=precision, metrics_preset=metrics_preset,
                             name=input_volume.GetName(), progress=on_progress)


def attack_on_server(scene: Any, input_volume: Any, arguments: EngineArguments, reference_node: Any, server: Backend,
                     *, wait: bool, on_progress: Callable[[Any], None] | None, cancel: Callable[[], bool],
                     show_result: bool) -> Any:
    """The Logic's ``run`` on a server. ``wait=True``: the ``SpectrumAttackResult`` (nodes added, shown side by side
    when ``show_result``); ``wait=False``: a :class:`RemoteAttackJob`, not started yet (application only)."""
    from SpectrumAttackAdapter.compute import ensure_client_dependencies

    ensure_client_dependencies()
    if not wait:
        return RemoteAttackJob(scene, input_volume, arguments, reference_node, server, on_progress, None)
    output = run_attack(scene, input_volume, arguments, reference_node, server, on_progress=on_progress, cancel=cancel)
    if show_result:
        from SpectrumAttackAdapter.layout import show_side_by_side

        show_side_by_side(input_volume, output)
    return output


def audit_on_server(scene: Any, volumes: list[Any], references: list[Any], models: Any, preset: Any, server: Backend,
                    *, seed: int, precision: str, metrics_preset: str, output: Any,
                    on_progress: Callable[[Any], None] | None) -> dict[str, Any]:
    """The Logic's ``audit`` on a server (one volume): the same table and chart nodes as a local audit; returns
    the summary with ``"nodes"`` and ``"folder"``."""
    from SpectrumAttackAdapter.audit_job import import_audit
    from SpectrumAttackAdapter.compute import ensure_client_dependencies

    if len(volumes) != 1 or len(references) > 1:
        raise ValueError(f"inputVolume must be one volume node for an audit on a server, got {len(volumes)}.")
    ensure_client_dependencies()
    result = run_audit(scene, volumes[0], models, preset, references[0] if references else None, server, seed=seed,
                       precision=precision, metrics_preset=metrics_preset,
                       output=None if output is None else str(output), on_progress=on_progress)
    return import_audit(scene, {"cells": result.cells, "summary": result.summary}, volumes[0].GetName(),
                        result.folder)


class RemoteAttackJob:
    """An attack on the server followed from Qt's event loop (application only), like ``clijob.CLIJob``.

    Args:
        scene, input_volume, arguments, reference_node, server: as :func:`run_attack`.
        on_progress: called with a ``clijob.JobProgress`` on each status poll.
        on_finished: called once with ``(result, error)``: the :class:`SpectrumAttackResult`, or None and a
            message (``"cancelled"`` when cancelled).
    """

    def __init__(self, scene: Any, input_volume: Any, arguments: EngineArguments, reference_node: Any,
                 server: Backend, on_progress: Callable[[Any], None] | None,
                 on_finished: Callable[[SpectrumAttackResult | None, str | None], None] | None) -> None:
        self.scene, self.input_volume, self.arguments = scene, input_volume, arguments
        self.reference_node, self.on_progress, self.on_finished = reference_node, on_progress, on_finished
        self.session = server.session()
        self.job_id: str | None = None
        self.started = time.monotonic()
        self._timer: Any = None
        self._cancelled = False
        self._done = False
        self._lost_since: float | None = None

    @property
    def running(self) -> bool:
        return not self._done

    def start(self) -> RemoteAttackJob:
        """Upload and queue (this blocks for the upload), then poll every :data:`POLL_MS` ms."""
        import qt

        self.job_id = start_attack(self.scene, self.input_volume, self.arguments, self.reference_node, self.session)
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()
        return self

    def cancel(self) -> None:
        """Cancel on the server; the job reports ``"cancelled"`` once the server has stopped it."""
        self._cancelled = True
        if self.job_id is not None and not self._done:
            self.session.cancel(self.job_id)

    def _poll(self) -> None:
        from SpectrumAttackAdapter.clijob import JobProgress
        from SpectrumAttackLib.progress import Cancelled
        from SpectrumAttackLib.remote import ServerUnreachableError

        if self._done:
            return
        result, error = None, None
        try:
            try:
                record = self.session.status(self.job_id)
                self._lost_since = None
            except ServerUnreachableError:  # a restarting server: retried for the session's reconnect time
                self._lost_since = self._lost_since or time.monotonic()
                if time.monotonic() - self._lost_since <= self.session.reconnect_s:
                    return
                raise
            if not self.session.finished(record):
                report = self.session.progress_of(record)
                if report is not None and self.on_progress is not None:
                    self.on_progress(JobProgress(report.fraction, report.done, report.total, report.stage,
                                                 time.monotonic() - self.started))
                return
            result = write_result(self.scene, self.input_volume,
                                  self.session.attack_result(self.job_id, time.monotonic() - self.started),
                                  self.arguments.attack)
        except Cancelled:
            error = "cancelled"
        except Exception as exc:  # the job's one-line error for the GUI; the server keeps nothing of it
            logging.info("SpectrumAttack: the server job failed: %s", exc)
            error = str(exc)
            if self.job_id is not None:
                self.session.forget(self.job_id)
        self._done = True
        self._timer.stop()
        self.session.close()
        if self.on_finished is not None:
            self.on_finished(None if self._cancelled and result is None else result,
                             "cancelled" if self._cancelled and result is None else error)
