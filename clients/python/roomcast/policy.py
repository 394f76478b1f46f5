"""What a client does after a close or an error: docs/protocol.md section 3,
"Close codes and other ends", "Backoff" and "Errors". Pure and testable."""

from __future__ import annotations

import enum
import random
from typing import Callable


class Action(enum.Enum):
    """What to do when a connection ends."""

    RECONNECT_NOW = "reconnect at once"  # 1001, 4012: at most 100 ms of jitter
    RECONNECT = "reconnect with backoff"
    REFRESH_TOKEN = "ask for a new token"  # 4001, 1008
    STOP = "stop"


_NOW = {1001, 4012}
_REFRESH = {1008, 4001}
_STOP = {1002, 1003, 1007, 1009, 4029}


def classify_close(code: int) -> Action:
    """The close-code table. Codes it does not name (1012, 1013, other 4xxx)
    are failures like 1011: reconnect with backoff."""
    if code in _NOW:
        return Action.RECONNECT_NOW
    if code in _REFRESH:
        return Action.REFRESH_TOKEN
    if code in _STOP:
        return Action.STOP
    return Action.RECONNECT


# The most jitter before an immediate reconnect (1001, 4012).
NOW_JITTER = 0.1


class Backoff:
    """min(max, min × 2^(n−1)) × a random factor in [0.5, 1.5) before attempt n."""

    def __init__(self, minimum: float = 0.25, maximum: float = 10.0,
                 rand: Callable[[], float] = random.random) -> None:
        if minimum <= 0 or maximum < minimum:
            raise ValueError("backoff bounds: need 0 < minimum <= maximum")
        self.minimum, self.maximum = minimum, maximum
        self._rand = rand
        self.attempt = 0

    def base(self, attempt: int) -> float:
        """The wait before attempt `attempt` (1 = the first after a failure), without jitter."""
        # 2**64 is plenty and keeps float overflow out of reach.
        return min(self.maximum, self.minimum * 2.0 ** min(attempt - 1, 64))

    def next(self) -> float:
        """The wait before the next attempt; counts it."""
        self.attempt += 1
        return self.base(self.attempt) * (0.5 + self._rand())

    def reset(self) -> None:
        """A connection is open and its token accepted: start over."""
        self.attempt = 0


class Retry:
    """The per-room retry after `UNAVAILABLE`: 1 s, doubling to 10 s, no jitter."""

    def __init__(self, first: float = 1.0, cap: float = 10.0) -> None:
        self.first, self.cap, self.attempt = first, cap, 0

    def next(self) -> float:
        self.attempt += 1
        return min(self.cap, self.first * 2.0 ** min(self.attempt - 1, 64))

    def reset(self) -> None:
        self.attempt = 0


class ErrorAction(enum.Enum):
    """What to do about a refused subscribe."""

    RETRY_LATER = "subscribe again after 1 s, doubling to 10 s"  # UNAVAILABLE
    RESEND_AFTER_BACKOFF = "send again after the backoff"  # RATE_LIMITED
    NOTHING = "nothing"  # CANCELLED
    GIVE_UP = "tell the application; not retried on this connection"
    NEED_TOKEN = "a new token, then subscribe again"  # UNAUTHENTICATED


def classify_error(code: str) -> ErrorAction:
    """The error table, for a subscribe. Codes it does not name (INTERNAL, a
    newer node's) are told and not retried, like BAD_REQUEST."""
    return {
        "UNAVAILABLE": ErrorAction.RETRY_LATER,
        "RATE_LIMITED": ErrorAction.RESEND_AFTER_BACKOFF,
        "CANCELLED": ErrorAction.NOTHING,
        "UNAUTHENTICATED": ErrorAction.NEED_TOKEN,
    }.get(code, ErrorAction.GIVE_UP)
