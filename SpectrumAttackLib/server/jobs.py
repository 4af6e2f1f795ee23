"""The job table and the one worker thread that owns the models and the GPU.

Jobs are queued and run one at a time by a single persistent thread (CUDA's per-thread caches, cuDNN plans and the
loaded models stay warm; one job never competes with another for GPU memory). ``max_jobs`` bounds the queued and
running jobs together; one more is refused with :class:`QueueFullError` (HTTP 503).

A job moves ``queued → running → done | failed | cancelled``. While it runs, its progress (stage, done/total,
ETA) and log lines (the engine's log records and warnings from the worker thread, and each new stage) are readable.
Cancelling sets a flag the engine polls between steps (``cancel`` / ``progress`` hooks); the job stops at the
next step and its partial results are removed.

Records are saved on every state change. A server that stopped while a job was queued or running marks it failed
when it starts again and removes whatever the job had begun to write, so that nothing half-written is served.
Finished jobs and their results are kept until the client deletes them (it does after fetching) or until
``retention_s`` after they finished.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from SpectrumAttackLib.progress import Progress
from SpectrumAttackLib.remote.protocol import upload_ids, weights_ids
from SpectrumAttackLib.server.config import ServerConfig
from SpectrumAttackLib.server.kinds import KINDS, JobContext, JobKind, ModelCache
from SpectrumAttackLib.server.store import NotFoundError, Store, new_id

__all__ = ["ACTIVE", "FINISHED", "Job", "JobTable", "QueueFullError"]

logger = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
#: log lines kept per job (the oldest are dropped).
LOG_LINES = 2000
#: seconds between retention sweeps while the worker is idle.
SWEEP_INTERVAL_S = 60.0


class QueueFullError(RuntimeError):
    """``max_jobs`` jobs are queued or running already."""


@dataclass
class Job:
    """One job's record (what ``job.json`` holds and, less the owner, what the API shows)."""

    id: str
    owner: str
    kind: str
    request: dict[str, Any]
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: dict[str, Any] = field(default_factory=lambda: {"stage": "queued", "done": 0, "total": 0,
                                                                "message": "", "eta_s": None})
    log: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None
    files: list[str] = field(default_factory=list)
    cancel_requested: bool = False

    def public(self, log_from: int = 0) -> dict[str, Any]:
        """The API view: everything but the owner; log lines from index ``log_from`` on (``log_total`` says how
        many there are)."""
        view = asdict(self)
        view.pop("owner")
        view.pop("cancel_requested")
        view["log"] = self.log[max(0, log_from):]
        view["log_total"] = len(self.log)
        return view


class _JobLog(logging.Handler):
    """Log records of the worker thread, appended to the running job's log."""

    def __init__(self, table: JobTable) -> None:
        super().__init__(logging.INFO)
        self.table = table
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.table.worker_ident:
            self.table.append_log(self.format(record))


class JobTable:
    """Jobs by id, their queue and the worker thread.

    Args:
        config: the server's settings.
        kinds: job kinds by name (default :data:`~SpectrumAttackLib.server.kinds.KINDS`).
    """

    def __init__(self, config: ServerConfig, kinds: Mapping[str, JobKind] | None = None) -> None:
        self.config = config
        self.kinds = dict(kinds or KINDS)
        self.store = Store(config.data)
        self.models = ModelCache(self.store, config.device, config.trust_model_code)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._current: Job | None = None
        self._thread: threading.Thread | None = None
        self.worker_ident: int | None = None
        self._log_handler = _JobLog(self)
        self._recover()

    # ------------------------------------------------------------------------------------------ life cycle
    def _recover(self) -> None:
        """Load the records on disk; jobs a stopped server left queued or running become failed, their partial
        results removed."""
        for record in self.store.job_records():
            try:
                job = Job(**record)
            except TypeError:
                continue
            if job.state in ACTIVE:
                self.store.discard_results(job.id)
                job.error = {"type": "ServerRestarted",
                             "message": f"the server stopped while this job was {job.state}; it did not finish and "
                                        "left no results. Submit it again."}
                job.state, job.finished, job.files = "failed", time.time(), []
                self.store.save_job(asdict(job))
            self._jobs[job.id] = job
        self.sweep()

    def start(self) -> None:
        """Start the worker thread."""
        engine_log = logging.getLogger("SpectrumAttackLib")
        engine_log.addHandler(self._log_handler)
        if engine_log.getEffectiveLevel() > logging.INFO:  # the engine's INFO lines belong in the jobs' logs
            engine_log.setLevel(logging.INFO)
        self._thread = threading.Thread(target=self._work, name="spectrum-attack-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the running job, stop the worker (waiting at most ``timeout`` seconds for it)."""
        with self._lock:
            if self._current is not None:
                self._current.cancel_requested = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        logging.getLogger("SpectrumAttackLib").removeHandler(self._log_handler)

    # ---------------------------------------------------------------------------------------------- API
    def submit(self, owner: str, request: Mapping[str, Any]) -> Job:
        """Check a request's shape and queue it.

        Raises:
            ValueError: an unknown kind or a request of the wrong shape (the engine checks the values).
            NotFoundError: an image, labels or weights id that is not this owner's upload.
            QueueFullError: ``max_jobs`` jobs are queued or running.
        """
        if not isinstance(request, Mapping):
            raise ValueError(f"request must be a JSON object, got {type(request).__name__}.")
        kind = self.kinds.get(request.get("kind"))
        if kind is None:
            raise ValueError(f"kind must be one of {', '.join(map(repr, self.kinds))}, got {request.get('kind')!r}.")
        kind.check(request)
        for key in ("image", "labels"):
            if request.get(key):
                self.store.upload(owner, request[key], "volume")
        for weights in weights_ids(request):
            self.store.upload(owner, weights, "weights")
        with self._lock:
            active = sum(job.state in ACTIVE for job in self._jobs.values())
            if active >= self.config.max_jobs:
                raise QueueFullError(f"the server is busy: {active} jobs are queued or running, its limit "
                                     f"(--max-jobs) is {self.config.max_jobs}. Try again when a job has finished.")
            job = Job(id=new_id(), owner=owner, kind=kind.name, request=dict(request))
            self._jobs[job.id] = job
            self.store.save_job(asdict(job))
        self._queue.put(job.id)
        return job

    def get(self, owner: str, job_id: str) -> Job:
        """The job ``job_id`` of ``owner``.

        Raises:
            NotFoundError: no such job for this owner (another owner's jobs are not found either).
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.owner != owner:
                raise NotFoundError(f"job {job_id!r} is not on the server (never submitted, deleted, expired, "
                                    "or another token's).")
            return job

    def list(self, owner: str) -> list[Job]:
        """``owner``'s jobs, oldest first."""
        with self._lock:
            return sorted((j for j in self._jobs.values() if j.owner == owner), key=lambda j: j.created)

    def cancel_or_delete(self, owner: str, job_id: str) -> Job:
        """Cancel a queued or running job (a running one stops at its next step); delete a finished one and its
        results."""
        with self._lock:
            job = self.get(owner, job_id)
            if job.state == "queued":
                job.state, job.finished, job.cancel_requested = "cancelled", time.time(), True
                job.progress["stage"] = "cancelled"
                self.store.save_job(asdict(job))
            elif job.state == "running":
                job.cancel_requested = True
            else:
                del self._jobs[job_id]
                self.store.delete_job(job_id)
            return job

    def delete_upload(self, owner: str, upload_id: str) -> None:
        """Delete an upload of ``owner`` that no queued or running job uses.

        Raises:
            NotFoundError: no such upload for this owner.
            ValueError: a queued or running job uses it.
        """
        with self._lock:
            for job in self._jobs.values():
                if job.owner == owner and job.state in ACTIVE and upload_id in upload_ids(job.request):
                    raise ValueError(f"upload {upload_id!r} must not be in use to be deleted, got job {job.id!r} "
                                     f"({job.state}) using it.")
            self.store.delete_upload(owner, upload_id)

    def append_log(self, line: str) -> None:
        with self._lock:
            if self._current is not None:
                self._current.log.append(line)
                del self._current.log[:-LOG_LINES]

    def sweep(self) -> None:
        """Delete finished jobs and uploads older than the retention time."""
        limit = time.time() - self.config.retention_s
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state in FINISHED and (job.finished or 0) < limit:
                    del self._jobs[job.id]
                    self.store.delete_job(job.id)
            keep = {i for job in self._jobs.values() if job.state in ACTIVE for i in upload_ids(job.request)}
        self.store.expire_uploads(limit, keep)

    # ------------------------------------------------------------------------------------------- worker
    def _work(self) -> None:
        self.worker_ident = threading.get_ident()
        while True:
            try:
                job_id = self._queue.get(timeout=SWEEP_INTERVAL_S)
            except queue.Empty:
                self.sweep()
                continue
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.state != "queued":
                    continue
                job.state, job.started = "running", time.time()
                job.progress.update(stage="starting", message="")
                self._current = job
                self.store.save_job(asdict(job))
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._current = None

    def _run(self, job: Job) -> None:
        from SpectrumAttackLib.progress import Cancelled

        context = JobContext(owner=job.owner, request=job.request, store=self.store,
                             result=self.store.result_folder(job.id), models=self.models,
                             progress=lambda report: self._progress(job, report),
                             should_stop=lambda: job.cancel_requested)
        original = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            if threading.get_ident() == self.worker_ident:
                self.append_log(f"WARNING {category.__name__}: {message}")
            else:
                original(message, category, filename, lineno, file, line)

        state, error, files = "failed", None, []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = show
                files = self.kinds[job.kind].run(context)
            state = "done"
        except Cancelled:
            state = "cancelled"
        except Exception as exc:  # a job's failure is reported to its client, never fatal to the server
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            error = {"type": type(exc).__name__, "message": text}
            if not isinstance(exc, (ValueError, TypeError, FileNotFoundError, NotFoundError)):
                logger.error("job %s failed:\n%s", job.id, traceback.format_exc())
        with self._lock:
            if state != "done":
                self.store.discard_results(job.id)
            job.state, job.error, job.files, job.finished = state, error, files, time.time()
            job.progress.update(stage=state, eta_s=0.0 if state == "done" else None)
            if state == "done":
                job.progress["done"] = job.progress["total"]
            job.log.append(f"job {state}" + (f": {error['message']}" if error else ""))
            self.store.save_job(asdict(job))

    def _progress(self, job: Job, report: Progress) -> None:
        elapsed = time.time() - (job.started or time.time())
        fraction = report.fraction
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        with self._lock:
            if report.stage != job.progress.get("stage"):
                job.log.append(f"{report.stage}: {report.message}".rstrip(": "))
            job.progress = {"stage": report.stage, "done": int(report.done), "total": int(report.total),
                            "message": report.message, "eta_s": None if eta is None else round(eta, 1)}
