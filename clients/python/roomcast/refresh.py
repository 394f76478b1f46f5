"""The token refresher: asks the application's callback for a new token at
three quarters of the token's life (at the latest 10 s before exp) or when
the node asks for one, and sends it in an `auth` request on the open
connection. docs/protocol.md section 3, "Token refresh"."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Optional

from .messages import TOKEN_REFRESH_FAILED, Notice
from .owner import Owner
from .policy import Backoff
from .token import jwt_exp, refresh_at, retry_deadline


RefreshCallback = Callable[[], Awaitable[str]]

# Without an exp to go by, an on-demand refresh is tried for this long (the
# node's auth timeout, 10 s by default, closes a token-less connection first).
NO_EXP_RETRY_WINDOW = 30.0


class Refresher:
    """Owned by a Client; run() is its task."""

    def __init__(self, client: Owner, callback: RefreshCallback,
                 backoff_min: float, backoff_max: float) -> None:
        self._client = client
        self._callback = callback
        self._bounds = (backoff_min, backoff_max)
        self._lock = asyncio.Lock()  # one callback at a time
        self._demand = asyncio.Event()
        self._changed = asyncio.Event()
        self._given_up: Optional[str] = None  # the token whose scheduled refresh failed for good

    def token_changed(self) -> None:
        """A new token is in force: compute its schedule again."""
        self._changed.set()

    def now(self) -> None:
        """The node asked for a token (UNAUTHENTICATED)."""
        self._demand.set()

    def _due(self) -> Optional[float]:
        token = self._client.token
        if not token or token == self._given_up:
            return None
        exp = jwt_exp(token)
        if exp is None:
            return None
        return refresh_at(self._client.token_received_at, exp)

    async def run(self) -> None:
        while True:
            self._changed.clear()
            due = self._due()
            timeout = None if due is None else max(0.0, due - time.time())
            if await _first(self._demand, self._changed, timeout) is self._changed:
                continue
            self._demand.clear()
            before = self._client.token
            await self._refresh_with_retries()
            if self._client.token == before:
                self._given_up = before  # do not ask again for this token until the node does

    async def _refresh_with_retries(self) -> None:
        token = self._client.token
        exp = jwt_exp(token) if token else None
        deadline = retry_deadline(exp) if exp is not None else time.time() + NO_EXP_RETRY_WINDOW
        backoff = Backoff(*self._bounds)
        while not await self._refresh_once():
            delay = backoff.next()
            if time.time() + delay > deadline:
                return  # the node closes with 4001; that close asks again
            await asyncio.sleep(delay)

    async def _refresh_once(self) -> bool:
        """One refresh: True when done (accepted, stored for the next
        connection, or refused as another user's, which is not retried)."""
        token = await self.ask(self._client.token)
        if token is None:
            return False
        conn = self._client.connection
        if conn is None or not conn.accepted:
            self._client.set_token(token)  # the next connection sends it
            return True
        try:
            refused = await conn.authenticate(token)
        except ConnectionError:
            self._client.set_token(token)  # the connection ended: the next one sends it
            return True
        if refused is None:
            self._client.set_token(token)
            return True
        # FORBIDDEN: another user's token; the application was told and
        # must open a new connection to change users.
        return refused.code == "FORBIDDEN"

    async def ask(self, refused: Optional[str]) -> Optional[str]:
        """The callback's new token, or None (told to the application as
        token_refresh_failed) when it failed or gave `refused` again."""
        async with self._lock:
            try:
                token = await self._callback()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - the application's callback may fail any way
                await self._client._emit(Notice(TOKEN_REFRESH_FAILED, text=f"the refresh callback failed: {err}"[:300]))
                return None
        if not isinstance(token, str) or not token:
            await self._client._emit(Notice(TOKEN_REFRESH_FAILED, text="the refresh callback gave no token"))
            return None
        if token == refused:
            await self._client._emit(Notice(TOKEN_REFRESH_FAILED, text="the refresh callback gave the same token"))
            return None
        return token


async def _first(a: asyncio.Event, b: asyncio.Event, timeout: Optional[float]) -> Optional[asyncio.Event]:
    """Waits for a or b (or the timeout: None); returns the event that was set."""
    tasks = {asyncio.ensure_future(a.wait()): a, asyncio.ensure_future(b.wait()): b}
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        return tasks[task]
    return None
