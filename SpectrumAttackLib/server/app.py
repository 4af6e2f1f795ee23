"""The HTTP API of ``spectrum-attack serve`` (FastAPI).

Endpoints (all but ``/healthz`` need ``Authorization: Bearer <token>``; errors are ``{"detail": "<one line>"}``):

=======  ===============================  ==========================================================================
GET      ``/healthz``                     ``{"status": "ok", "protocol", "engine"}`` (no token: for "Test connection")
GET      ``/v1/capabilities``             engine version, protocol, job kinds, attacks and their parameters, catalogue
                                          models, device, precisions, codecs, limits
POST     ``/v1/volumes``                  a volume (body: wire bytes; ``X-Meta``: shape, dtype, affine, codec) → id
POST     ``/v1/weights``                  a checkpoint file (body: its bytes; ``X-Filename``) → id
DELETE   ``/v1/uploads/{id}``             delete a volume or weights upload no queued or running job uses
POST     ``/v1/jobs``                     start a job (JSON, see :mod:`.kinds`) → 202 and its record; 503 when full
GET      ``/v1/jobs``                     this token's jobs
GET      ``/v1/jobs/{id}``                state, progress (stage, done, total, ETA), log lines from ``?log_from=N``
GET      ``/v1/jobs/{id}/files/{name}``   a result file of a finished job (volumes with their ``X-Meta``)
DELETE   ``/v1/jobs/{id}``                cancel a queued or running job; delete a finished one and its results
=======  ===============================  ==========================================================================

A client that sends ``X-SpectrumAttack-Protocol`` with another version than :data:`PROTOCOL_VERSION` gets 426.
Uploads larger than the limit get 413, also while streaming when no length was announced.
"""


import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from SpectrumAttackLib import __version__
from SpectrumAttackLib.remote.protocol import CODECS, META_HEADER, PROTOCOL_HEADER, PROTOCOL_VERSION, meta_header
from SpectrumAttackLib.server.config import ServerConfig, owner_of
from SpectrumAttackLib.server.jobs import JobTable, QueueFullError
from SpectrumAttackLib.server.store import ID_PATTERN, NotFoundError

__all__ = ["create_app"]



def _capabilities(config: ServerConfig, table: JobTable) -> dict[str, Any]:
    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.attacks.parameters import parameters_of
    from SpectrumAttackLib.models.catalogue import load_catalogue
    from SpectrumAttackLib.precision import PRECISIONS
    from SpectrumAttackLib.runtime import device_info, resolve_device

    models = [{"name": e.name, "description": e.description, "num_classes": e.num_classes,
               "classes": [{"id": c.id, "name": c.name, "rgb": list(c.rgb)} for c in e.classes]}
              for e in load_catalogue()]
    return {
        "protocol": PROTOCOL_VERSION, "engine": __version__, "kinds": sorted(table.kinds),
        "attacks": {name: [p.engine for p in parameters_of(name)] for name in attacks.available()},
        "models": models, "device": str(resolve_device(config.device)), "device_info": device_info(),
        "precisions": list(PRECISIONS), "codecs": list(CODECS),
        "limits": {"max_jobs": config.max_jobs, "max_upload_bytes": config.max_upload_bytes,
                   "retention_s": config.retention_s, "trust_model_code": config.trust_model_code},
    }


async def _stream_to(request: Request, path: Any, limit: int) -> None:
    """Write the request body to ``path``, refusing (413) more than ``limit`` bytes."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise HTTPException(413, f"upload must be at most {limit} bytes (the server's --max-upload-mb), got "
                                 f"{announced} bytes.")
    received = 0
    with open(path, "wb") as file:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                file.close()
                path.unlink(missing_ok=True)
                raise HTTPException(413, f"upload must be at most {limit} bytes (the server's --max-upload-mb), "
                                         f"got more.")
            file.write(chunk)
    if received == 0:
        path.unlink(missing_ok=True)
        raise HTTPException(400, "upload body must not be empty, got 0 bytes.")


def create_app(config: ServerConfig) -> FastAPI:
    """The application: its job table and worker start and stop with it (FastAPI lifespan)."""
    table = JobTable(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        table.start()
        try:
            yield
        finally:
            table.stop()

    app = FastAPI(title="SpectrumAttack server", version=__version__, lifespan=lifespan)
    app.state.table = table

    def owner(authorization: Annotated[str | None, Header()] = None,
              protocol: Annotated[str | None, Header(alias=PROTOCOL_HEADER)] = None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        found = owner_of(config.tokens, token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise HTTPException(401, "Authorization must be 'Bearer <token>' with a token of the server's "
                                     "--token-file, got " + ("none." if not authorization else "another token."),
                                headers={"WWW-Authenticate": "Bearer"})
        if protocol is not None and protocol != str(PROTOCOL_VERSION):
            raise HTTPException(426, f"{PROTOCOL_HEADER} must be {PROTOCOL_VERSION} (this server's protocol, "
                                     f"engine {__version__}), got {protocol!r}: update the client or the server.")
        return found

    Owner = Annotated[str, Depends(owner)]

    def job_id_checked(job_id: str) -> str:
        if not ID_PATTERN.match(job_id):
            raise HTTPException(404, f"job {job_id!r} is not on the server.")
        return job_id

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc).strip().splitlines()[0]}, status_code=400)

    @app.exception_handler(QueueFullError)
    async def busy(request: Request, exc: QueueFullError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "protocol": PROTOCOL_VERSION, "engine": __version__}

    @app.get("/v1/capabilities")
    def capabilities(who: Owner) -> dict[str, Any]:
        return _capabilities(config, table)

    @app.post("/v1/volumes", status_code=201)
    async def upload_volume(request: Request, who: Owner) -> dict[str, Any]:
        upload_id, partial = table.store.partial_upload()
        await _stream_to(request, partial, config.max_upload_bytes)
        record = await run_in_threadpool(table.store.add_volume, upload_id, partial, who,
                                         request.headers.get(META_HEADER))
        return {"id": upload_id, "shape": record["meta"]["shape"], "dtype": record["meta"]["dtype"],
                "bytes": record["bytes"], "sha256": record["sha256"]}

    @app.post("/v1/weights", status_code=201)
    async def upload_weights(request: Request, who: Owner,
                             filename: Annotated[str, Header(alias="X-Filename")] = "weights.pt") -> dict[str, Any]:
        upload_id, partial = table.store.partial_upload()
        await _stream_to(request, partial, config.max_upload_bytes)
        record = table.store.add_weights(upload_id, partial, who, filename)
        return {"id": upload_id, "bytes": record["bytes"], "sha256": record["sha256"]}

    @app.delete("/v1/uploads/{upload_id}")
    def delete_upload(upload_id: str, who: Owner) -> dict[str, Any]:
        table.delete_upload(who, upload_id)
        return {"id": upload_id, "deleted": True}

    @app.post("/v1/jobs", status_code=202)
    async def submit(request: Request, who: Owner) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError as error:
            raise HTTPException(400, f"request must be JSON, got a body that does not parse ({error}).") from None
        return table.submit(who, body).public()

    @app.get("/v1/jobs")
    def list_jobs(who: Owner) -> dict[str, Any]:
        return {"jobs": [job.public(log_from=len(job.log)) for job in table.list(who)]}

    @app.get("/v1/jobs/{job_id}")
    def status(job_id: str, who: Owner, log_from: int = 0) -> dict[str, Any]:
        return table.get(who, job_id_checked(job_id)).public(log_from)

    @app.get("/v1/jobs/{job_id}/files/{name}")
    def result_file(job_id: str, name: str, who: Owner) -> FileResponse:
        job = table.get(who, job_id_checked(job_id))
        if job.state != "done":
            raise HTTPException(409, f"job {job_id!r} must be done to fetch its results, got state {job.state!r}.")
        if name not in job.files:
            raise HTTPException(404, f"name must be one of {', '.join(job.files)}, got {name!r}.")
        path = table.store.result_folder(job.id) / name
        headers = {}
        if name.endswith(".vol"):
            document = json.loads((table.store.result_folder(job.id) / "result.json").read_text(encoding="utf-8"))
            headers[META_HEADER] = meta_header(document["volumes"][name[:-4]])
        return FileResponse(path, headers=headers, media_type="application/octet-stream")

    @app.delete("/v1/jobs/{job_id}")
    def cancel_or_delete(job_id: str, who: Owner) -> dict[str, Any]:
        job = table.cancel_or_delete(who, job_id_checked(job_id))
        return {"id": job.id, "state": job.state, "cancel_requested": job.cancel_requested}

    return app
