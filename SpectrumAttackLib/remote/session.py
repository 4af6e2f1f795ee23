""":class:`RemoteSession`: run attacks and audits on a ``spectrum-attack serve`` server, with the local API's call
shape and result types (torch-free)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from SpectrumAttackLib import __version__
from SpectrumAttackLib.pipeline.results import AuditResult, SingleVolumeResult
from SpectrumAttackLib.progress import Cancelled, Progress, ProgressCallback
from SpectrumAttackLib.remote.errors import (
    AuthenticationError,
    RemoteError,
    RemoteJobError,
    ServerBusyError,
    ServerUnreachableError,
    VersionMismatchError,
)
from SpectrumAttackLib.remote.protocol import (
    META_HEADER,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    decode_volume,
    encode_volume,
    meta_header,
    parse_meta,
    upload_ids,
)

__all__ = ["RemoteSession"]

#: keys of ``model_options`` that are not ``build_model`` keywords.
_MODEL_FIELDS = ("architecture", "num_classes", "preprocessing")
#: errors of bad input keep their type across the wire, as the local API raises them.
_INPUT_ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError,
                                             "FileNotFoundError": FileNotFoundError}


def _image(image: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(image, (str, os.PathLike)):
        from SpectrumAttackLib.io.volumes import read_volume

        image = read_volume(image, name=name)
    if hasattr(image, "array") and hasattr(image, "affine"):
        return np.asarray(image.array), np.asarray(image.affine)
    if isinstance(image, (tuple, list)) and len(image) == 2:
        return np.asarray(image[0]), np.asarray(image[1])
    raise TypeError(f"{name} must be a Volume, an (array_ijk, affine) pair or a NIfTI/NRRD path, got "
                    f"{type(image).__name__}.")


def _labels(labels: Any, name: str) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        from SpectrumAttackLib.io.volumes import read_volume

        labels = read_volume(labels, name=name)
    return np.asarray(labels.array if hasattr(labels, "array") else labels)


class RemoteSession:
    """A connection to one server with one token.

    Args:
        url: the server's base URL (``http://127.0.0.1:8765``, or the ``https://`` address of its reverse proxy).
        token: one of the server's tokens (its ``--token-file``).
        timeout: seconds for one request to connect / read / write (connect 10 s at most).
        retries: attempts to connect before a request gives up.
        poll_s: seconds between status calls while a job runs.
        reconnect_s: how long a running job's status is retried when the connection drops (a server restart).
        verify: check the server's TLS certificate (or a CA bundle path), as httpx takes it.

    Every method raises, in one line: :class:`ServerUnreachableError` (no connection: check the URL, that
    ``spectrum-attack serve`` runs, the tunnel or proxy), :class:`AuthenticationError` (401: check the token),
    :class:`ServerBusyError` (503: the queue is full), :class:`VersionMismatchError` (another protocol version:
    install the same SpectrumAttack on both sides), ``ValueError`` for bad input (the engine's words).
    """

    def __init__(self, url: str, token: str, *, timeout: float = 60.0, retries: int = 3, poll_s: float = 0.5,
                 reconnect_s: float = 60.0, verify: bool | str = True) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}.")
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be the server's token (a non-empty string), got none.")
        self.url = url.rstrip("/")
        self.poll_s, self.reconnect_s = float(poll_s), float(reconnect_s)
        self._checked = False
        self._client = httpx.Client(
            base_url=self.url, verify=verify,
            headers={"Authorization": f"Bearer {token.strip()}", PROTOCOL_HEADER: str(PROTOCOL_VERSION)},
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout), write=max(timeout, 120.0)),
            transport=httpx.HTTPTransport(retries=retries, verify=verify),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- requests
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise ServerUnreachableError(
                f"the SpectrumAttack server at {self.url} did not answer in time ({type(error).__name__}): check that "
                "it is running and not overloaded, and the network between you.") from None
        except httpx.TransportError as error:
            raise ServerUnreachableError(
                f"cannot reach the SpectrumAttack server at {self.url} ({error or type(error).__name__}): check the "
                "URL and port, that 'spectrum-attack serve' runs there, and any SSH tunnel or proxy (set NO_PROXY "
                "for localhost).") from None
        if response.status_code < 400:
            return response
        try:
            detail = str(response.json().get("detail", response.text))
        except (json.JSONDecodeError, AttributeError):
            detail = response.text.strip()[:200]
        code = response.status_code
        if code == 401:
            raise AuthenticationError(f"the server at {self.url} refused the token (401): use a token of its "
                                      "--token-file (Slicer: Compute section; Python: RemoteSession(url, token)).")
        if code == 503:
            raise ServerBusyError(f"the server at {self.url} is busy (503): {detail}")
        if code == 426:
            raise VersionMismatchError(f"the server at {self.url} speaks another protocol: {detail}")
        if code in (400, 413, 422):
            raise ValueError(detail)
        raise RemoteError(f"the server at {self.url} answered {code} to {method} {path}: {detail}")

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # -------------------------------------------------------------------------------------------- server
    def ping(self) -> dict[str, Any]:
        """``/healthz`` (no token needed), with the protocol version checked: what "Test connection" calls.

        Raises:
            ServerUnreachableError, VersionMismatchError: see the class.
        """
        health = self._json("GET", "/healthz")
        if health.get("protocol") != PROTOCOL_VERSION:
            raise VersionMismatchError(
                f"the server at {self.url} speaks protocol {health.get('protocol')!r} (engine "
                f"{health.get('engine')}), this client protocol {PROTOCOL_VERSION} (engine {__version__}): install "
                "the same SpectrumAttack version on both sides.")
        self._checked = True
        return health

    def _check(self) -> None:
        if not self._checked:
            self.ping()

    def capabilities(self) -> dict[str, Any]:
        """Engine version, job kinds, attacks and their parameters, catalogue models (with classes), device,
        precisions, codecs and limits of the server (token checked)."""
        self._check()
        return self._json("GET", "/v1/capabilities")

    def upload_volume(self, array: Any, affine: Any, *, name: str = "volume") -> str:
        """Send a volume once; returns its id for jobs (kept on the server until unused for its retention time)."""
        self._check()
        body, meta = encode_volume(array, affine, name=name)
        reply = self._json("POST", "/v1/volumes", content=body,
                           headers={META_HEADER: meta_header(meta), "Content-Type": "application/octet-stream"})
        return reply["id"]

    def upload_weights(self, path: str | os.PathLike) -> str:
        """Send a model's weights file (a state-dict checkpoint); returns its id for ``model`` specs."""
        self._check()
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"model must be a catalogue name or an existing weights file, got {str(path)!r}.")
        with file.open("rb") as stream:
            reply = self._json("POST", "/v1/weights", content=stream,
                               headers={"X-Filename": file.name, "Content-Type": "application/octet-stream"})
        return reply["id"]

    def _model_spec(self, model: Any, options: Mapping[str, Any] | None) -> Any:
        if isinstance(model, os.PathLike) or (isinstance(model, str) and Path(model).expanduser().is_file()):
            options = dict(options or {})
            spec: dict[str, Any] = {"weights": self.upload_weights(Path(model).expanduser())}
            spec.update({k: options.pop(k) for k in _MODEL_FIELDS if k in options})
            if options:
                spec["arguments"] = options
            return spec
        if not isinstance(model, str):
            raise TypeError(f"model must be a catalogue name or a weights file path, got {type(model).__name__}.")
        if options:
            raise ValueError(f"model_options must be left out for catalogue model {model!r}, got "
                             f"{', '.join(sorted(options))}.")
        return model

    # ---------------------------------------------------------------------------------------------- jobs
    def submit(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Queue a job (see ``SpectrumAttackLib.server.kinds`` for the request shapes); returns its record."""
        self._check()
        return self._json("POST", "/v1/jobs", json=dict(request))

    def status(self, job_id: str, log_from: int = 0) -> dict[str, Any]:
        """A job's record: ``state``, ``progress`` (stage, done, total, message, eta_s), ``log`` from
        ``log_from``, ``error``, ``files``."""
        return self._json("GET", f"/v1/jobs/{job_id}", params={"log_from": log_from})

    def jobs(self) -> list[dict[str, Any]]:
        """This token's jobs."""
        self._check()
        return self._json("GET", "/v1/jobs")["jobs"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (it stops at its next step); delete a finished one and its results."""
        return self._json("DELETE", f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, *, progress: ProgressCallback | None = None,
             cancel: Callable[[], bool] | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Poll a job until it finished; returns its record when done.

        Args:
            progress: called with ``Progress(done, total, stage, message)`` (the message ends with the ETA).
            cancel: polled between status calls; True cancels the job on the server.
            log: called with each new log line of the job.

        Raises:
            Cancelled: the job was cancelled (by ``cancel`` or another call).
            ValueError, TypeError, FileNotFoundError: the engine refused the job's input (its message).
            RemoteJobError: the job failed otherwise (e.g. the server restarted while it ran).
            ServerUnreachableError: the server stayed unreachable for ``reconnect_s``.
        """
        seen, cancelled, lost_since = 0, False, None
        while True:
            try:
                record = self.status(job_id, log_from=seen)
                lost_since = None
            except ServerUnreachableError as error:
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > self.reconnect_s:
                    raise ServerUnreachableError(f"lost the server while job {job_id} was running: {error}") from None
                time.sleep(self.poll_s)
                continue
            for line in record.get("log", []):
                if log is not None:
                    log(line)
            seen = int(record.get("log_total", seen))
            report = self.progress_of(record)
            if progress is not None and report is not None:
                progress(report)
            if self.finished(record):
                return record
            if cancel is not None and not cancelled and cancel():
                self.cancel(job_id)
                cancelled = True
            time.sleep(self.poll_s)

    def finished(self, record: Mapping[str, Any]) -> bool:
        """Whether a job record (:meth:`status`) is of a finished job: True when done, False while queued or
        running; raises what the job ended with otherwise.

        Raises:
            Cancelled: the job was cancelled.
            ValueError, TypeError, FileNotFoundError: the engine refused the job's input (its message).
            RemoteJobError: the job failed otherwise (e.g. the server restarted while it ran).
        """
        state, job_id = record["state"], record["id"]
        if state == "done":
            return True
        if state == "cancelled":
            raise Cancelled(f"job {job_id} was cancelled on the server")
        if state == "failed":
            error = record.get("error") or {}
            kind, message = error.get("type", "Error"), error.get("message", "no message")
            if kind in _INPUT_ERRORS:
                raise _INPUT_ERRORS[kind](message)
            raise RemoteJobError(f"job {job_id} failed on the server at {self.url}: {message}")
        return False

    @staticmethod
    def progress_of(record: Mapping[str, Any]) -> Progress | None:
        """The job record's progress as ``Progress(done, total, stage, message)`` (the message ends with the
        server's ETA), or None before the job reported any."""
        report = record.get("progress") or {}
        if not report.get("total"):
            return None
        eta = report.get("eta_s")
        message = report.get("message", "") + (f" (ETA {eta:.0f} s)" if eta else "")
        return Progress(int(report["done"]), int(report["total"]), str(report.get("stage", "")), message.strip())

    def delete_upload(self, upload_id: str) -> None:
        """Delete an uploaded volume or weights file from the server (else kept until unused for its retention
        time)."""
        self._send("DELETE", f"/v1/uploads/{upload_id}")

    def forget(self, job_id: str) -> None:
        """Delete a job whose outcome was read (results fetched, error or cancellation reported) and the uploads it
        used; a job still running (the client was interrupted) is cancelled, and its uploads stay until it stops
        and their retention time passes. An unreachable server keeps everything until the retention time."""
        with contextlib.suppress(RemoteError):
            request = self.status(job_id).get("request", {})
            self.cancel(job_id)
            for upload_id in upload_ids(request):
                with contextlib.suppress(RemoteError):
                    self.delete_upload(upload_id)

    def fetch(self, job_id: str, name: str) -> httpx.Response:
        """A result file of a finished job."""
        return self._send("GET", f"/v1/jobs/{job_id}/files/{name}")

    def fetch_volume(self, job_id: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(array [I, J, K], affine)`` of a result volume (``adversarial``, ``perturbation``, ``seg_clean``,
        ``seg_adv``)."""
        response = self.fetch(job_id, f"{name}.vol")
        return decode_volume(response.content, parse_meta(response.headers.get(META_HEADER)))

    # -------------------------------------------------------------------------------- the local API's shape
    def start_attack(
        self,
        image: Any,
        *,
        model: Any,
        attack: str,
        params: Mapping[str, Any] | None = None,
        reference_labels: Any = None,
        seed: int = 0,
        precision: str = "auto",
        attack_mode: str = "tiles",
        overlap: float = 0.5,
        tile_batch_size: int = 4,
        metrics_preset: str = "clinical",
        model_options: Mapping[str, Any] | None = None,
        image_name: str = "image",
        labels_name: str = "reference_labels",
    ) -> str:
        """Upload the inputs and queue the attack; returns the job id (follow it with :meth:`status` or
        :meth:`wait`, collect it with :meth:`attack_result`). Arguments as :meth:`attack`; ``image_name`` and
        ``labels_name`` are the names the server's checks use in their messages (``"inputVolume"``...)."""
        array, affine = _image(image, image_name)
        labels = _labels(reference_labels, labels_name)
        request = {
            "kind": "attack", "image": self.upload_volume(array, affine, name=image_name),
            "labels": None if labels is None else self.upload_volume(labels, affine, name=labels_name),
            "model": self._model_spec(model, model_options), "attack": attack, "params": dict(params or {}),
            "settings": {"seed": seed, "precision": precision, "attack_mode": attack_mode, "overlap": overlap,
                         "tile_batch_size": tile_batch_size, "metrics_preset": metrics_preset},
        }
        return self.submit(request)["id"]

    def attack_result(self, job_id: str, seconds: float | None = None) -> SingleVolumeResult:
        """Fetch a finished attack job's results and delete the job on the server.

        Args:
            seconds: the wall-clock time to report (default the server's own time for the job).
        """
        try:
            document = self.fetch(job_id, "result.json").json()
            volumes = {name: self.fetch_volume(job_id, name)[0]
                       for name in ("adversarial", "perturbation", "seg_clean", "seg_adv")}
        finally:
            self.forget(job_id)
        return SingleVolumeResult(metrics=document["metrics"], classes=document["classes"],
                                  attack_config=document["attack_config"],
                                  seconds=document["seconds"] if seconds is None else seconds, **volumes)

    def attack(
        self,
        image: Any,
        *,
        model: Any,
        attack: str,
        params: Mapping[str, Any] | None = None,
        reference_labels: Any = None,
        seed: int = 0,
        precision: str = "auto",
        attack_mode: str = "tiles",
        overlap: float = 0.5,
        tile_batch_size: int = 4,
        metrics_preset: str = "clinical",
        model_options: Mapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> SingleVolumeResult:
        """:func:`SpectrumAttackLib.workflows.single.attack_single_volume` on the server.

        Args:
            image: a ``Volume``, an ``(array_ijk, affine)`` pair or a NIfTI/NRRD path (never modified).
            model: a name of the server's catalogue, or a local weights file (state-dict checkpoint), uploaded,
                with ``model_options``: ``architecture``, ``num_classes``, ``preprocessing`` (a dict of
                ``Preprocessing`` fields) and ``build_model`` keywords (``roi``, ``channels``...).
            attack, params, reference_labels, seed, precision, attack_mode, overlap, tile_batch_size,
            metrics_preset, progress, cancel: as the local function (``progress`` gets the server's progress;
                ``cancel`` returning True cancels the job on the server).

        Returns:
            The same :class:`~SpectrumAttackLib.pipeline.results.SingleVolumeResult` as a local run (``model_grid``
            empty: model-grid tensors stay on the server). The job and its results are deleted from the server
            once fetched.
        """
        start = time.perf_counter()
        job_id = self.start_attack(image, model=model, attack=attack, params=params,
                                   reference_labels=reference_labels, seed=seed, precision=precision,
                                   attack_mode=attack_mode, overlap=overlap, tile_batch_size=tile_batch_size,
                                   metrics_preset=metrics_preset, model_options=model_options)
        try:
            self.wait(job_id, progress=progress, cancel=cancel)
        except BaseException:
            self.forget(job_id)
            raise
        return self.attack_result(job_id, seconds=time.perf_counter() - start)

    def audit(
        self,
        image: Any,
        *,
        models: Any,
        labels: Any = None,
        grid: Any = "quick",
        output: str | os.PathLike | None = None,
        overwrite: bool = False,
        seed: int = 0,
        precision: str = "auto",
        metrics_preset: str = "clinical",
        attack_mode: str = "tiles",
        overlap: float = 0.5,
        tile_batch_size: int = 4,
        levels: Sequence[float] | None = None,
        name: str = "image",
        model_options: Mapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> AuditResult:
        """:func:`SpectrumAttackLib.workflows.audit` of one volume on the server.

        Args:
            image, labels: the volume and optional reference labels (as :meth:`attack`).
            models: a model (catalogue name or weights file, see :meth:`attack`), a list of them, or a mapping
                label → model; ``model_options`` apply to every weights file.
            grid: ``"quick"``, ``"standard"``, ``"paper"`` or a grid mapping (``{"attacks": {...}}``, checked by
                the server; load a grid file with ``yaml.safe_load`` first).
            output: a local folder for the audit's files (``audit.csv``, ``audit.json``, ``curves.png``,
                ``report.html``, ``manifest.json``), written all or nothing; None keeps none.
            overwrite: replace earlier audit results in ``output``.
            seed, precision, metrics_preset, attack_mode, overlap, tile_batch_size, levels: as the local function.
            progress, cancel: as :meth:`attack`.

        Returns:
            The same :class:`~SpectrumAttackLib.pipeline.results.AuditResult` as a local run; ``folder`` is
            ``output`` (or None).
        """
        from SpectrumAttackLib.audit.outputs import AUDIT_RESULTS
        from SpectrumAttackLib.pipeline.staging import StagedOutput

        array, affine = _image(image, "image")
        label_array = _labels(labels, "labels")
        if not isinstance(grid, (str, Mapping)):
            raise TypeError(f"grid must be a preset name or a grid mapping, got {type(grid).__name__}.")
        if isinstance(models, Mapping):
            specs: Any = {str(k): self._model_spec(v, model_options) for k, v in models.items()}
        else:
            specs = [self._model_spec(m, model_options)
                     for m in (models if isinstance(models, (list, tuple)) else [models])]
        staged = None if output is None else StagedOutput(output, "output", overwrite, AUDIT_RESULTS)
        try:
            settings: dict[str, Any] = {"seed": seed, "precision": precision, "metrics_preset": metrics_preset,
                                        "attack_mode": attack_mode, "overlap": overlap,
                                        "tile_batch_size": tile_batch_size}
            if levels is not None:
                settings["levels"] = list(levels)
            request = {
                "kind": "audit", "image": self.upload_volume(array, affine, name=name),
                "labels": None if label_array is None else self.upload_volume(label_array, affine, name="labels"),
                "models": specs, "grid": grid, "settings": settings,
            }
            job = self.submit(request)
            try:
                record = self.wait(job["id"], progress=progress, cancel=cancel)
                document = self.fetch(job["id"], "audit.json").json()
                folder = None
                if staged is not None:
                    for file in record["files"]:
                        staged.path(file).write_bytes(self.fetch(job["id"], file).content)
                    folder = staged.commit()
            finally:
                self.forget(job["id"])
        except BaseException:
            if staged is not None:
                staged.discard()
            raise
        return AuditResult(cells=document["cells"], clean=document["clean"], summary=document["summary"],
                           manifest=document["manifest"], folder=folder)
