"""What a Connection and the Refresher need of the Client that owns them.

Declared here, apart from client.py, so that the parts the Client is made
of do not import it back: the Client depends on them, never the other
way. Client is the one implementation (the names with a leading
underscore are the package's own, not the application's)."""

from __future__ import annotations

from typing import Iterable, Optional, Protocol

from .messages import Message
from .rooms import Room


class Owner(Protocol):
    token: Optional[str]
    token_received_at: float  # time.time() when the token in force was set
    ping_after: float  # s of silence before the liveness ping
    dead_after: float  # s more without an answer: the connection is dead
    _backoff_bounds: tuple[float, float]

    @property
    def can_refresh(self) -> bool:
        """A refresh callback was given."""

    def room(self, name: str) -> Optional[Room]:
        """The followed room of that name, if any."""

    def followed(self) -> Iterable[Room]:
        """Every followed room."""

    def set_token(self, token: str) -> None:
        """Puts a new token in force."""

    def _refresh_now(self) -> None:
        """Asks the refresher for a new token at once."""

    async def _emit(self, item: Message) -> None:
        """Hands item to the application (waits while its queue is full)."""

    async def _on_accepted(self) -> None:
        """The open connection's token was accepted."""
