"""The `websockets` library, whichever its version: Debian bookworm's 10.4
(`websockets.client.connect`, `extra_headers=`) or a newer one whose
asyncio client (`websockets.asyncio.client`, 13 and later; the default from
14) takes `additional_headers=`. Detected, not required.
"""

from __future__ import annotations

import ssl
from typing import Any, Optional

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

try:  # websockets >= 13
    from websockets.asyncio.client import connect as _connect

    _HEADERS_ARG = "additional_headers"
except ImportError:  # websockets 10 to 12: the legacy client
    from websockets.client import connect as _connect  # type: ignore[assignment,no-redef]

    _HEADERS_ARG = "extra_headers"

VERSION = getattr(websockets, "__version__", "?")

__all__ = ["ConnectionClosed", "HandshakeFailed", "CertificateRefused", "open_connection", "close_code"]


class HandshakeFailed(Exception):
    """The connection could not be opened (refused, 503, a timeout): retry."""


class CertificateRefused(Exception):
    """The node's certificate is not trusted: the client stops."""


async def open_connection(url: str, token: Optional[str], *, open_timeout: float,
                          max_size: Optional[int], max_queue: int,
                          ssl_context: Optional[ssl.SSLContext]) -> Any:
    """Opens a WebSocket to url with the token in the upgrade's
    Authorization header. Reading stops when max_queue messages wait
    unread, which is what makes a slow application's node see a slow
    client. The library's own keep-alive pings are off: the client's
    liveness is the protocol's app-level ping."""
    kwargs: dict[str, Any] = {
        _HEADERS_ARG: {"Authorization": f"Bearer {token}"} if token else None,
        "open_timeout": open_timeout,
        "ping_interval": None,
        "close_timeout": 2,
        "max_size": max_size,
        "max_queue": max_queue,
    }
    if ssl_context is not None and url.startswith("wss:"):
        kwargs["ssl"] = ssl_context
    try:
        return await _connect(url, **kwargs)
    except ssl.SSLCertVerificationError as err:
        raise CertificateRefused(f"connect {url}: untrusted certificate: {err.verify_message}") from err
    except (InvalidHandshake, OSError, TimeoutError) as err:
        raise HandshakeFailed(f"connect {url}: {_describe(err)}") from err


def _describe(err: BaseException) -> str:
    status = getattr(err, "status_code", None)  # legacy InvalidStatusCode
    response = getattr(err, "response", None)  # InvalidStatus (>= 11 new API)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    text = str(err) or type(err).__name__
    return text[:200]


def close_code(err: ConnectionClosed) -> tuple[int, str]:
    """The close frame the node sent, or 1006 when it sent none."""
    rcvd = getattr(err, "rcvd", None)
    if rcvd is not None:
        return int(rcvd.code), str(rcvd.reason)
    return 1006, ""


def abort(ws: Any) -> None:
    """Drops a connection at once, without a closing handshake (a dead
    network would make that wait)."""
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()
