"""Settings of ``spectrum-attack serve`` and its token file."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from SpectrumAttackLib.checks import check_int, check_range

__all__ = ["MIN_TOKEN_LENGTH", "ServerConfig", "owner_of", "read_tokens"]

#: shortest token accepted in a token file (``secrets.token_urlsafe(32)`` gives 43 characters).
MIN_TOKEN_LENGTH = 16


def read_tokens(path: str | os.PathLike) -> dict[str, str]:
    """Tokens of a token file: ``{token: owner}``.

    One token per line, optionally preceded by an owner name and a space (``alice 3f9c...``); blank lines and
    ``#`` comments are skipped. A token without a name is its own owner (named by a digest of it). Several owners
    see only their own jobs and uploads.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: no token, a token shorter than :data:`MIN_TOKEN_LENGTH`, a token listed twice.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"--token-file must be a file with one token per line, got {str(file)!r} "
                                "(no such file).")
    tokens: dict[str, str] = {}
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) > 2:
            raise ValueError(f"--token-file lines must be 'TOKEN' or 'NAME TOKEN', got {len(parts)} words on line "
                             f"{number}.")
        token = parts[-1]
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"--token-file tokens must have at least {MIN_TOKEN_LENGTH} characters, got "
                             f"{len(token)} on line {number}.")
        if token in tokens:
            raise ValueError(f"--token-file tokens must be distinct, got line {number} repeating an earlier token.")
        tokens[token] = parts[0] if len(parts) == 2 else "token-" + hashlib.sha256(token.encode()).hexdigest()[:12]
    if not tokens:
        raise ValueError(f"--token-file must hold at least one token, got none in {str(file)!r}.")
    return tokens


def owner_of(tokens: Mapping[str, str], given: str) -> str | None:
    """The owner of ``given`` or None; compares with every token in constant time (no early exit)."""
    found = None
    presented = given.encode("utf-8", "replace")
    for token, owner in tokens.items():
        if hmac.compare_digest(presented, token.encode("utf-8")):
            found = owner
    return found


@dataclass(frozen=True)
class ServerConfig:
    """What a server runs with.

    Attributes:
        data: folder of uploads, job records and results (created if missing).
        tokens: ``{token: owner}`` (:func:`read_tokens`).
        max_jobs: queued plus running jobs at most; more answer 503.
        max_upload_bytes: largest accepted upload body.
        retention_s: results and uploads are deleted this long after a job finished or an upload was last used
            (fetched results are deleted by the client at once).
        trust_model_code: uploaded TorchScript files may be loaded (they carry code); without it only weights.
        device: where the worker runs the models (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``).
    """

    data: Path
    tokens: Mapping[str, str] = field(repr=False)
    max_jobs: int = 8
    max_upload_bytes: int = 2 << 30
    retention_s: float = 24 * 3600.0
    trust_model_code: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        check_int("--max-jobs", self.max_jobs, 1)
        check_int("--max-upload-mb", self.max_upload_bytes, 1)
        check_range("--retention-hours", self.retention_s, 0.0, None, low_inclusive=False)
