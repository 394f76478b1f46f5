"""What the library hands the application, and how node frames are read.

docs/protocol.md section 3: "Events", "The response", "Bad input from the
node". Parsing is pure (no I/O) so the tests can feed it anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Union

# The notices of the contract (clients/conformance/README.md): the same
# words in every library.
CONNECTED = "connected"
DISCONNECTED = "disconnected"
DRAINING = "draining"
REQUEST_ERROR = "request_error"
TOKEN_REFRESHED = "token_refreshed"
TOKEN_REFRESH_FAILED = "token_refresh_failed"
BAD_INPUT = "bad_input"


@dataclass(frozen=True)
class Event:
    """One event of a room, handed over once, in `seq` order."""

    room: str
    seq: int
    event: str
    data: Any = None
    ts: str = ""
    key: Optional[str] = None
    key_deleted: bool = False
    conflated: int = 0  # superseded events of the room the node skipped just before this one


@dataclass(frozen=True)
class Subscribed:
    """A subscribe response: where live delivery starts, and what was lost."""

    room: str
    seq: int
    epoch: str
    replayed: int
    recovered: bool
    resumed: bool  # any subscribe of the room after its first (a reconnection, a retry, the application's own)
    since: Optional[int] = None  # the since the subscribe sent (None: live only)
    state: Optional[list[Event]] = None  # with state=True: the room's keys' latest events


@dataclass(frozen=True)
class Notice:
    """Anything else the library tells: `kind` is one of the contract's words."""

    kind: str
    code: int = 0
    error: str = ""
    room: str = ""
    text: str = ""


class Stopped(Exception):
    """The client stopped for good: `code` is the close code (0 for none)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"roomcast client stopped: {code} {reason}".strip())
        self.code = code
        self.reason = reason


Message = Union[Event, Subscribed, Notice]


class BadInput(ValueError):
    """A node frame the library cannot read; it is reported and skipped."""


@dataclass(frozen=True)
class Draining:
    """The node's `server.draining` event: a 1001 close follows."""


@dataclass(frozen=True)
class Pong:
    id: str = ""


@dataclass(frozen=True)
class Response:
    id: str
    event: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    id: str
    event: str
    code: str
    message: str
    room: str = ""  # the room of an unasked FORBIDDEN


Frame = Union[Event, Draining, Pong, Response, Error]

def parse_frame(raw: Union[str, bytes]) -> Frame:
    """Reads one node frame, or raises BadInput saying what is wrong."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raise BadInput(f"a binary frame of {len(raw)} bytes")
    try:
        msg = json.loads(raw)
    except ValueError as err:
        raise BadInput(f"not JSON: {err}") from err
    if not isinstance(msg, dict):
        raise BadInput(f"not a JSON object: {type(msg).__name__}")
    typ = msg.get("type")
    if typ == "event":
        if msg.get("event") == "server.draining" and "room" not in msg:
            return Draining()
        return parse_event(msg)
    if typ == "response":
        data = msg.get("data")
        if not isinstance(data, dict):
            raise BadInput("a response without a data object")
        return Response(_str(msg, "id"), _str(msg, "event"), data)
    if typ == "error":
        return _parse_error(msg)
    if typ == "pong":
        return Pong(_str(msg, "id"))
    if typ == "ping":
        # The node never sends app pings; one that comes is not for us to
        # answer (client pongs are ignored by the node anyway).
        raise BadInput("a ping message from the node")
    raise BadInput(f"unknown type {str(typ)[:64]!r}")


def parse_event(msg: dict) -> Event:
    """An event message (also a state entry), or BadInput."""
    room = msg.get("room")
    if not isinstance(room, str) or not room:
        raise BadInput("an event without a room")
    seq = msg.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq <= 0:
        raise BadInput(f"an event of {room[:140]} without a valid seq")
    name = msg.get("event")
    key = msg.get("key")
    conflated = msg.get("conflated", 0)
    if isinstance(conflated, bool) or not isinstance(conflated, int):
        conflated = 0
    return Event(
        room=room,
        seq=seq,
        event=name if isinstance(name, str) else "",
        data=msg.get("data"),
        ts=_str(msg, "ts"),
        key=key if isinstance(key, str) and key else None,
        key_deleted=msg.get("key_deleted") is True,
        conflated=conflated,
    )


def _parse_error(msg: dict) -> Error:
    data = msg.get("data")
    if not isinstance(data, dict):
        raise BadInput("an error without a data object")
    code = data.get("code")
    if not isinstance(code, str) or not code:
        raise BadInput("an error without a code")
    message = data.get("message") if isinstance(data.get("message"), str) else ""
    # The unasked FORBIDDEN after a refresh names its room in "room".
    room = _str(msg, "room")
    return Error(_str(msg, "id"), _str(msg, "event"), code, message, room)


def _str(msg: dict, name: str) -> str:
    v = msg.get(name)
    return v if isinstance(v, str) else ""


def subscribed_fields(data: dict) -> tuple[int, str, int, bool]:
    """A subscribe response's seq, epoch, replayed and recovered, or BadInput."""
    seq, replayed = data.get("seq", 0), data.get("replayed", 0)
    for name, v in (("seq", seq), ("replayed", replayed)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise BadInput(f"a subscribe response with a bad {name}")
    epoch = data.get("epoch", "")
    if not isinstance(epoch, str):
        raise BadInput("a subscribe response with a bad epoch")
    recovered = data.get("recovered", True)
    if not isinstance(recovered, bool):
        raise BadInput("a subscribe response with a bad recovered")
    return seq, epoch, replayed, recovered
