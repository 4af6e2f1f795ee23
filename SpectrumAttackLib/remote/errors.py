"""What the remote client raises: one line each, naming what to check."""

from __future__ import annotations

__all__ = ["AuthenticationError", "RemoteError", "RemoteJobError", "ServerBusyError", "ServerUnreachableError",
           "VersionMismatchError"]


class RemoteError(RuntimeError):
    """Base of the client's errors about the server (bad input gets ``ValueError``, as locally)."""


class ServerUnreachableError(RemoteError):
    """No connection, a timeout, or the connection dropped (the server stopped or restarted)."""


class AuthenticationError(RemoteError):
    """401: the token is missing or not one of the server's."""


class ServerBusyError(RemoteError):
    """503: the server's job queue is full (``--max-jobs``)."""


class VersionMismatchError(RemoteError):
    """The server speaks another protocol version than this client."""


class RemoteJobError(RemoteError):
    """A job failed on the server for another reason than bad input (e.g. the server restarted mid-job)."""
