"""``spectrum-attack serve``: run attacks and audits for remote clients (the Slicer module in server mode, the
Python client :class:`SpectrumAttackLib.remote.RemoteSession`) on this machine's GPU.

Examples::

    umask 077; python -c "import secrets; print(secrets.token_urlsafe(32))" > ~/.spectrumattack-token
    spectrum-attack serve --token-file ~/.spectrumattack-token --data /srv/spectrumattack
    spectrum-attack serve --port 8765 --token-file tokens.txt --max-jobs 16   # a TLS proxy on this host forwards

It binds to 127.0.0.1 unless told otherwise: reach it through an SSH tunnel or a reverse proxy with TLS
(``docs/remote.md``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve attacks and audits over HTTP to the Slicer module and Python clients",
        description="An HTTP server (FastAPI + uvicorn) running attack and audit jobs one at a time on this "
        "machine's device, for clients that send volumes and fetch results (docs/remote.md). Every endpoint but "
        "/healthz needs a bearer token from --token-file.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine "
                        "only; use a reverse proxy with TLS or an SSH tunnel to reach it from elsewhere)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    parser.add_argument("--token-file", dest="token_file", required=True,
                        help="file with one token per line, optionally 'NAME TOKEN'; each token sees only its own "
                        "jobs and uploads")
    parser.add_argument("--max-jobs", dest="max_jobs", type=int, default=8,
                        help="queued plus running jobs at most; more are refused with 503 (default 8)")
    parser.add_argument("--data", default=None,
                        help="folder for uploads, job records and results (default ~/.cache/spectrumattack/server)")
    parser.add_argument("--trust-model-code", dest="trust_model_code", action="store_true",
                        help="accept uploaded TorchScript models (they carry code); default: state-dict weights only")
    parser.add_argument("--device", default="auto", help="device of the worker: auto, cpu, cuda, cuda:N")
    parser.add_argument("--max-upload-mb", dest="max_upload_mb", type=int, default=2048,
                        help="largest accepted upload in MiB (default 2048)")
    parser.add_argument("--retention-hours", dest="retention_hours", type=float, default=24.0,
                        help="results not fetched and uploads not used are deleted after this long (default 24)")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Returns 0."""
    import uvicorn

    from SpectrumAttackLib.checks import check_int
    from SpectrumAttackLib.runtime import resolve_device
    from SpectrumAttackLib.server.app import create_app
    from SpectrumAttackLib.server.config import ServerConfig, read_tokens

    check_int("--port", args.port, 1, 65535)
    check_int("--max-upload-mb", args.max_upload_mb, 1)
    resolve_device(args.device)  # an unavailable device is refused before the server starts
    data = Path(args.data).expanduser() if args.data else Path.home() / ".cache" / "spectrumattack" / "server"
    config = ServerConfig(data=data, tokens=read_tokens(args.token_file), max_jobs=args.max_jobs,
                          max_upload_bytes=args.max_upload_mb << 20, retention_s=args.retention_hours * 3600.0,
                          trust_model_code=args.trust_model_code, device=args.device)
    print(f"spectrum-attack serve: http://{args.host}:{args.port} ({len(config.tokens)} token(s), data "
          f"{config.data}, device {resolve_device(args.device)}, max {config.max_jobs} jobs)", file=sys.stderr,
          flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=10)
    return 0
