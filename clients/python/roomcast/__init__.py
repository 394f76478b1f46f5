"""roomcast: the Python client of a roomcast node (asyncio, on websockets).

It implements docs/protocol.md section 3, "What a client does": URLs tried
in turn, the token in the upgrade, every room resumed with since and epoch
after a reconnection, each event handed over once, the close-code and error
tables, backoff with jitter, token refresh and liveness.

    async with roomcast.Client(["ws://127.0.0.1:8690"], token=tok) as client:
        client.subscribe("pool:p1", state=True)
        async for msg in client:
            ...
"""

from .client import Client
from .messages import (BAD_INPUT, CONNECTED, DISCONNECTED, DRAINING, REQUEST_ERROR, TOKEN_REFRESH_FAILED,
                       TOKEN_REFRESHED, Event, Message, Notice, Stopped, Subscribed)
from .rooms import Position

__all__ = [
    "Client", "Event", "Subscribed", "Notice", "Stopped", "Message", "Position",
    "CONNECTED", "DISCONNECTED", "DRAINING", "REQUEST_ERROR", "TOKEN_REFRESHED",
    "TOKEN_REFRESH_FAILED", "BAD_INPUT",
]

__version__ = "0.1.0"
