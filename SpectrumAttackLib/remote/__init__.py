"""The torch-free client of ``spectrum-attack serve`` (numpy + httpx; blosc2 when installed).

:class:`RemoteSession` has the call shape of the local API and returns the same result types::

    from SpectrumAttackLib.remote import RemoteSession
    session = RemoteSession("http://127.0.0.1:8765", token)
    result = session.attack(volume, model="unet-btcv-3mm", attack="saa", params={"steps": 10})  # SingleVolumeResult
    report = session.audit(volume, models=["unet-btcv-3mm"], grid="quick")                     # AuditResult

Importing this package imports neither torch nor MONAI (a test runs it with both made unimportable).
"""

from SpectrumAttackLib.progress import Cancelled
from SpectrumAttackLib.remote.errors import (
    AuthenticationError,
    RemoteError,
    RemoteJobError,
    ServerBusyError,
    ServerUnreachableError,
    VersionMismatchError,
)
from SpectrumAttackLib.remote.protocol import PROTOCOL_VERSION
from SpectrumAttackLib.remote.session import RemoteSession

__all__ = [
    "PROTOCOL_VERSION",
    "AuthenticationError",
    "Cancelled",
    "RemoteError",
    "RemoteJobError",
    "RemoteSession",
    "ServerBusyError",
    "ServerUnreachableError",
    "VersionMismatchError",
]
