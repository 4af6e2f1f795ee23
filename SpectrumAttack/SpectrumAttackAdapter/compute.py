"""Where the module's jobs run: on this computer (the engine in Slicer's Python, with PyTorch) or on a
SpectrumAttack server (``spectrum-attack serve``; Slicer then needs no PyTorch, only the client's packages).

The choice and the server URL are two parameters of the module's parameter node (saved with the scene, like the
other settings): ``computeBackend`` (``"local"`` or ``"server"``) and ``serverUrl``. The token is a secret of the
user, not of the scene: it lives in Slicer's settings (``qt.QSettings`` key ``SpectrumAttack/serverToken``), and
outside the application (slicer-core, PythonSlicer scripts) in the environment variable
``SPECTRUMATTACK_SERVER_TOKEN``.

The Logic asks :func:`backend` once per run and hands the answer to the job functions (``remote.py`` for the
server); nothing else decides where work runs.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BACKENDS",
    "CLIENT_REQUIREMENTS",
    "MODE_PARAMETER",
    "TOKEN_ENV",
    "TOKEN_SETTING",
    "URL_PARAMETER",
    "Backend",
    "backend",
    "ensure_client_dependencies",
    "parameter_node",
    "raw_node",
    "server_token",
    "set_backend",
    "set_server_token",
    "test_connection",
]

#: the two places a job can run.
BACKENDS = ("local", "server")
MODE_PARAMETER = "computeBackend"
URL_PARAMETER = "serverUrl"
#: Slicer setting holding the server token (never the scene).
TOKEN_SETTING = "SpectrumAttack/serverToken"
#: where the token is read outside the application.
TOKEN_ENV = "SPECTRUMATTACK_SERVER_TOKEN"
#: what server mode needs in Slicer's Python (numpy ships with Slicer): the client's packages only, no PyTorch.
CLIENT_REQUIREMENTS = ("httpx>=0.27", "blosc2>=2.6")
#: the module whose singleton parameter node holds the choice.
MODULE_NAME = "SpectrumAttack"


@dataclass(frozen=True)
class Backend:
    """Where a job runs: ``kind`` ``"local"`` or ``"server"`` (then ``url`` is the server's base URL)."""

    kind: str
    url: str = ""

    def session(self, token: str | None = None) -> Any:
        """A ``SpectrumAttackLib.remote.RemoteSession`` to the server, with ``token`` or :func:`server_token`.

        Raises:
            ValueError: a local backend, or no token.
        """
        if self.kind != "server":
            raise ValueError(f"computeBackend must be 'server' to open a server session, got {self.kind!r}.")
        from SpectrumAttackLib.remote import RemoteSession

        token = token if token is not None else server_token()
        if not token:
            raise ValueError("serverToken must be set (Compute section; kept in Slicer's settings, not in the "
                             "scene), got none.")
        return RemoteSession(self.url, token)


def raw_node(node: Any) -> Any:
    """The ``vtkMRMLScriptedModuleNode`` of a parameter node wrapper (or the node itself)."""
    return getattr(node, "parameterNode", node)


def parameter_node(scene: Any) -> Any:
    """The module's parameter node in ``scene`` (the singleton the application's Logic creates), or None."""
    node = scene.GetSingletonNode(MODULE_NAME, "vtkMRMLScriptedModuleNode")
    if node is not None:
        return node
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode")):
        candidate = scene.GetNthNodeByClass(index, "vtkMRMLScriptedModuleNode")
        if candidate.GetModuleName() == MODULE_NAME:
            return candidate
    return None


def backend(parameterNode: Any) -> Backend:
    """Where the module's jobs run, from its parameter node (or its wrapper, or any object with ``computeBackend``
    and ``serverUrl`` attributes); None or unset: this computer.

    Raises:
        ValueError: an unknown backend, or ``"server"`` without an http(s) URL.
    """
    if parameterNode is None:
        return Backend("local")
    node = raw_node(parameterNode)

    def read(name: str) -> str:  # an MRML node's parameter; an object's attribute of that name (console, tests)
        getter = getattr(node, "GetParameter", None)
        return str((getter(name) if getter is not None else getattr(node, name, "")) or "")

    kind = read(MODE_PARAMETER) or "local"
    if kind not in BACKENDS:
        raise ValueError(f"computeBackend must be one of {', '.join(map(repr, BACKENDS))}, got {kind!r}.")
    if kind == "local":
        return Backend("local")
    url = read(URL_PARAMETER).strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"serverUrl must start with http:// or https:// (e.g. http://127.0.0.1:8765 through an SSH "
                         f"tunnel), got {url!r}.")
    return Backend("server", url.rstrip("/"))


def set_backend(parameterNode: Any, kind: str, url: str = "") -> None:
    """Store the choice on the parameter node (checked as :func:`backend` reads it)."""
    node = raw_node(parameterNode)
    node.SetParameter(MODE_PARAMETER, kind)
    node.SetParameter(URL_PARAMETER, url.strip())
    backend(node)


def _settings() -> Any:
    import qt

    return qt.QSettings()


def server_token() -> str:
    """The server token: Slicer's settings in the application, ``$SPECTRUMATTACK_SERVER_TOKEN`` outside it."""
    if importlib.util.find_spec("qt") is None:
        return os.environ.get(TOKEN_ENV, "").strip()
    return str(_settings().value(TOKEN_SETTING, "") or "").strip()


def set_server_token(token: str) -> None:
    """Keep the token in Slicer's settings (application only; never written to the scene)."""
    _settings().setValue(TOKEN_SETTING, token.strip())


def test_connection(url: str, token: str) -> str:
    """One line about the server at ``url`` with ``token`` (protocol and token checked), for "Test connection".

    Raises:
        ValueError: a bad URL or no token. ``SpectrumAttackLib.remote`` errors: unreachable, refused token,
            another protocol version (each one line naming what to check).
    """
    with Backend("server", url.strip().rstrip("/")).session(token) as session:
        info = session.capabilities()
    device = info.get("device", "?")
    gpu = (info.get("device_info") or {}).get("gpu")
    return (f"Connected: SpectrumAttack {info['engine']} (protocol {info['protocol']}) on {device}"
            f"{f' ({gpu})' if gpu else ''}; {len(info['models'])} catalogue model(s), {len(info['attacks'])} attacks.")


def ensure_client_dependencies() -> None:
    """In the application: install the client's packages (no PyTorch) on first use, after asking."""
    if importlib.util.find_spec("qt") is None:
        return
    from SpectrumAttackAdapter.dependencies import install_missing

    install_missing(CLIENT_REQUIREMENTS)
