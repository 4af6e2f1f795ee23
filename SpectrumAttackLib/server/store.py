"""What ``spectrum-attack serve`` keeps under ``--data``, and for how long.

Layout::

    <data>/uploads/<id>.body        an uploaded volume (the wire body as sent) or weights file
    <data>/uploads/<id>.json        its record: owner, kind, wire meta, size, sha256, last use
    <data>/jobs/<id>/job.json       a job's record (state, request, progress, log, error, result files)
    <data>/jobs/<id>/result/        its results, moved into place by the staged writer when complete

Records are replaced atomically (written beside, then ``os.replace``). Uploads are written to a hidden partial file
and moved into place only once complete and checked. Ids are ``secrets.token_urlsafe(18)`` (144 random bits).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from SpectrumAttackLib.remote.protocol import decode_volume, parse_meta

__all__ = ["ID_PATTERN", "NotFoundError", "Store", "new_id", "write_json"]

#: what ids look like (anything else is refused before it reaches the file system).
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class NotFoundError(LookupError):
    """No such upload or job for this token (another token's ids are not found either)."""


def new_id() -> str:
    """An unguessable id (144 random bits, URL-safe)."""
    return secrets.token_urlsafe(18)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``document`` atomically (NaN kept as JSON's ``NaN``: metrics may hold it)."""
    partial = path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}")
    partial.write_text(json.dumps(document, default=_plain, allow_nan=True), encoding="utf-8")
    os.replace(partial, path)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


class Store:
    """Uploads and job folders under one data folder."""

    def __init__(self, data: str | os.PathLike) -> None:
        self.root = Path(data).expanduser().absolute()
        self.uploads = self.root / "uploads"
        self.jobs = self.root / "jobs"
        for folder in (self.uploads, self.jobs):
            folder.mkdir(parents=True, exist_ok=True)
        for partial in self.uploads.glob(".*.partial-*"):  # an upload cut off by a crash or restart
            partial.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------ uploads
    def partial_upload(self) -> tuple[str, Path]:
        """A new upload id and the hidden file its body is streamed into."""
        upload_id = new_id()
        return upload_id, self.uploads / f".{upload_id}.partial-body"

    def add_volume(self, upload_id: str, partial: Path, owner: str, meta_text: str | None) -> dict[str, Any]:
        """Check a streamed volume (meta, decoding, shape) and keep it; the partial file is removed either way.

        Raises:
            ValueError: a bad ``X-Meta``, a body that does not decode to it, or not a 3-D volume.
        """
        from SpectrumAttackLib.pipeline.validate import check_image

        try:
            meta = parse_meta(meta_text)
            body = partial.read_bytes()
            array, _ = decode_volume(body, meta)
            check_image(meta.get("name") or "volume", array)
            record = {"id": upload_id, "owner": owner, "kind": "volume", "meta": meta, "bytes": len(body),
                      "sha256": hashlib.sha256(body).hexdigest(), "created": time.time(), "used": time.time()}
            os.replace(partial, self.uploads / f"{upload_id}.body")
            write_json(self.uploads / f"{upload_id}.json", record)
        finally:
            partial.unlink(missing_ok=True)
        return record

    def add_weights(self, upload_id: str, partial: Path, owner: str, filename: str) -> dict[str, Any]:
        """Keep a streamed weights file (checked when a job loads it)."""
        suffix = Path(filename).suffix.lower()
        if suffix not in (".pt", ".pth", ".ckpt", ".ts", ".bin"):
            partial.unlink(missing_ok=True)
            raise ValueError(f"weights file name must end in .pt, .pth, .ckpt, .ts or .bin, got {filename!r}.")
        body_path = self.uploads / f"{upload_id}.body"
        digest = hashlib.sha256()
        with partial.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        record = {"id": upload_id, "owner": owner, "kind": "weights", "filename": Path(filename).name,
                  "suffix": suffix, "bytes": partial.stat().st_size, "sha256": digest.hexdigest(),
                  "created": time.time(), "used": time.time()}
        os.replace(partial, body_path)
        write_json(self.uploads / f"{upload_id}.json", record)
        return record

    def upload(self, owner: str, upload_id: str, kind: str) -> dict[str, Any]:
        """The record of an upload of ``owner``.

        Raises:
            NotFoundError: no upload ``upload_id`` of this kind for this owner.
        """
        record_path = self.uploads / f"{upload_id}.json"
        missing = NotFoundError(f"{kind} {upload_id!r} is not on the server (never uploaded, expired, or another "
                                "token's).")
        if not ID_PATTERN.match(upload_id or "") or not record_path.is_file():
            raise missing
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("owner") != owner or record.get("kind") != kind:
            raise missing
        return record

    def delete_upload(self, owner: str, upload_id: str) -> None:
        """Delete an upload of ``owner`` (volume or weights).

        Raises:
            NotFoundError: no such upload for this owner.
        """
        try:
            self.upload(owner, upload_id, "volume")
        except NotFoundError:
            self.upload(owner, upload_id, "weights")
        for path in self.uploads.glob(f"{upload_id}.*"):
            path.unlink(missing_ok=True)

    def touch(self, upload_id: str) -> None:
        """Mark an upload as used now (retention counts from its last use)."""
        path = self.uploads / f"{upload_id}.json"
        record = json.loads(path.read_text(encoding="utf-8"))
        record["used"] = time.time()
        write_json(path, record)

    def volume(self, owner: str, upload_id: str) -> tuple[np.ndarray, np.ndarray, str]:
        """``(array [I, J, K], affine, name)`` of an uploaded volume."""
        record = self.upload(owner, upload_id, "volume")
        array, affine = decode_volume((self.uploads / f"{upload_id}.body").read_bytes(), record["meta"])
        return array, affine, str(record["meta"].get("name") or "volume")

    def weights_path(self, owner: str, upload_id: str) -> Path:
        """Where an uploaded weights file is, under a name with its own ending (so loaders see the format)."""
        record = self.upload(owner, upload_id, "weights")
        link = self.uploads / f"{upload_id}{record['suffix']}"
        if not link.exists():
            os.link(self.uploads / f"{upload_id}.body", link)
        return link

    def expire_uploads(self, older_than: float, keep: set[str]) -> None:
        """Delete uploads last used before ``older_than`` (epoch seconds), except ids in ``keep``."""
        for record_path in self.uploads.glob("*.json"):
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if record.get("id") in keep or float(record.get("used", 0)) >= older_than:
                continue
            for path in self.uploads.glob(f"{record['id']}.*"):
                path.unlink(missing_ok=True)

    # --------------------------------------------------------------------------------------------- jobs
    def job_folder(self, job_id: str) -> Path:
        return self.jobs / job_id

    def result_folder(self, job_id: str) -> Path:
        return self.jobs / job_id / "result"

    def job_records(self) -> Iterator[dict[str, Any]]:
        """Every job record on disk (unreadable ones are skipped)."""
        for record_path in sorted(self.jobs.glob("*/job.json")):
            try:
                yield json.loads(record_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue

    def save_job(self, record: Mapping[str, Any]) -> None:
        folder = self.job_folder(record["id"])
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "job.json", record)

    def discard_results(self, job_id: str) -> None:
        """Remove a job's results and any staging folder beside them (an interrupted or cancelled run)."""
        folder = self.job_folder(job_id)
        if not folder.is_dir():
            return
        for path in folder.iterdir():
            if path.name != "job.json":
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def delete_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_folder(job_id), ignore_errors=True)
