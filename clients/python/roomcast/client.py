"""The roomcast client: follows rooms over one connection at a time, and
hands the application each event once. docs/protocol.md section 3, "What a
client does"."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from typing import Iterable, Optional, Sequence, Union

from . import _ws
from .connection import Connection
from .messages import CONNECTED, DISCONNECTED, Message, Notice, Stopped
from .policy import NOW_JITTER, Action, Backoff, classify_close
from .refresh import Refresher, RefreshCallback
from .rooms import Options, Position, Room


class _End:
    """The application closed the client: iteration ends."""


class Client:
    """Follows rooms on a roomcast node. Use as `async with`, subscribe,
    and iterate: each item is an Event, a Subscribed or a Notice; a final
    stop raises Stopped.

    Backpressure is real: while the application does not take the next
    item, the client does not read its socket (the websockets library
    holds at most `max_queue` messages), so a slow application is a slow
    consumer to the node, which closes it (4008, or a reset); the client
    then resumes every room where the application is.
    """

    def __init__(self, urls: Union[str, Sequence[str]], *, token: Optional[str] = None,
                 refresh: Optional[RefreshCallback] = None,
                 backoff_min: float = 0.25, backoff_max: float = 10.0,
                 ping_after: float = 15.0, dead_after: float = 10.0,
                 open_timeout: float = 10.0, max_message_size: Optional[int] = 64 * 2**20,
                 max_queue: int = 16, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("roomcast.Client needs at least one URL")
        self.token = token or None
        self.token_received_at = time.time()
        self.ping_after, self.dead_after = ping_after, dead_after
        self._backoff_bounds = (backoff_min, backoff_max)
        self._backoff = Backoff(backoff_min, backoff_max)
        self._open_args = dict(open_timeout=open_timeout, max_size=max_message_size,
                               max_queue=max_queue, ssl_context=ssl_context)
        self._rooms: dict[str, Room] = {}
        self._refresher = Refresher(self, refresh, backoff_min, backoff_max) if refresh else None
        self._out: asyncio.Queue = asyncio.Queue(maxsize=1)  # the reader waits for the application
        self._final: Union[None, Stopped, _End] = None
        self._tasks: list[asyncio.Task] = []
        self._attempt = 0
        self.connection: Optional[Connection] = None

    # --- the application's side ------------------------------------------

    async def __aenter__(self) -> "Client":
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Starts connecting (done by `async with` and by iterating)."""
        if self._tasks or self._final is not None:
            return
        self._tasks.append(asyncio.create_task(self._run(), name="roomcast-client"))
        if self._refresher is not None:
            self._tasks.append(asyncio.create_task(self._refresher.run(), name="roomcast-refresh"))

    async def close(self) -> None:
        """Stops the client: closes its connection with 1000; iteration ends."""
        if isinstance(self._final, _End):
            return
        conn = self.connection
        await self._stop_tasks()
        if conn is not None:
            await conn.close()
        if self._final is None:
            self._final = _End()
        while not self._out.empty():
            self._out.get_nowait()
        self._out.put_nowait(self._final)  # wakes an application waiting in __anext__

    def subscribe(self, room: str, *, history: bool = False, since: Optional[int] = None,
                  epoch: Optional[str] = None, state: bool = False, conflate: bool = False) -> None:
        """Follows room. The first subscribe is live only, or with history
        every retained event (since 0), or from the application's stored
        since (and epoch); every later one resumes where the application is.
        Subscribing a followed room again changes its options (and, with
        since, its position: the old subscription is left first, so that its
        events still on their way are not taken for the new position's)."""
        opts = Options(history=history, since=since, epoch=epoch, state=state, conflate=conflate)
        followed = self._rooms.get(room)
        if followed is None:
            followed = Room(room, opts, *self._backoff_bounds)
            self._rooms[room] = followed
        else:
            followed.set_options(opts)  # the same Room: its next response is a resubscription's
            if since is not None and self.connection is not None:
                # Handed over, the old subscription's events in flight would
                # become the kept seq above `since`, and the replay asked for
                # would be dropped as duplicates.
                self.connection.unsubscribe(room)
        if self.connection is not None:
            self.connection.subscribe(followed)

    def unsubscribe(self, room: str) -> None:
        """Stops following room; its events are dropped from now on."""
        if self._rooms.pop(room, None) is not None and self.connection is not None:
            self.connection.unsubscribe(room)

    def position(self, room: str) -> Position:
        """The room's kept seq and epoch: store them to resume later with
        subscribe(room, since=seq, epoch=epoch)."""
        r = self._rooms.get(room)
        return r.position() if r is not None else Position(None, None)

    def __aiter__(self) -> "Client":
        return self

    async def __anext__(self) -> Message:
        if self._final is None:
            self.start()
        if isinstance(self._final, _End):
            raise StopAsyncIteration
        if isinstance(self._final, Stopped) and self._out.empty():
            raise self._final
        item = await self._out.get()
        if isinstance(item, _End):
            raise StopAsyncIteration
        if isinstance(item, Stopped):
            raise item
        return item

    # --- for the connection and the refresher ----------------------------

    def room(self, name: str) -> Optional[Room]:
        return self._rooms.get(name)

    def followed(self) -> Iterable[Room]:
        return list(self._rooms.values())

    @property
    def can_refresh(self) -> bool:
        return self._refresher is not None

    def set_token(self, token: str) -> None:
        self.token = token
        self.token_received_at = time.time()
        if self._refresher is not None:
            self._refresher.token_changed()

    def _refresh_now(self) -> None:
        if self._refresher is not None:
            self._refresher.now()

    async def _emit(self, item: Message) -> None:
        await self._out.put(item)

    async def _on_accepted(self) -> None:
        self._backoff.reset()
        await self._emit(Notice(CONNECTED, text=f"connected to {self._url}"))

    # --- connecting -------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                await self._attempt_once()
        except Stopped as stop:
            self._final = stop
            for task in self._tasks[1:]:
                task.cancel()
            await self._out.put(stop)

    async def _attempt_once(self) -> None:
        self._url = self.urls[self._attempt % len(self.urls)]
        self._attempt += 1
        token = self.token
        try:
            ws = await _ws.open_connection(self._url, token, **self._open_args)
        except _ws.CertificateRefused as err:
            # Code 0: no connection opened, as for any failed handshake.
            reason = f"the node's certificate is not trusted: {err}"
            await self._emit(Notice(DISCONNECTED, code=0, text=f"{reason}; stopping"))
            raise Stopped(0, reason) from err
        except _ws.HandshakeFailed as err:
            delay = self._backoff.next()
            # Code 0: no connection opened (docs/protocol.md, "What a client does").
            await self._emit(Notice(DISCONNECTED, code=0, text=f"{err}; next attempt in {delay:.2f} s"))
            await asyncio.sleep(delay)
            return
        conn = Connection(self, ws)
        self.connection = conn
        try:
            code, reason = await conn.serve()
        except Stopped:
            await conn.close()
            raise
        finally:
            self.connection = None
        await self._after_close(code, reason, token)

    async def _after_close(self, code: int, reason: str, token: Optional[str]) -> None:
        said = reason or "no reason"
        action = classify_close(code)
        if action is Action.REFRESH_TOKEN:
            new = await self._refresher.ask(token) if self._refresher is not None else None
            if new is None:
                action = Action.STOP
            else:
                self.set_token(new)
                said += "; a new token"
        if action is Action.STOP:
            await self._emit(Notice(DISCONNECTED, code=code, text=f"{said}; stopping"))
            raise Stopped(code, reason)
        delay = random.random() * NOW_JITTER if action is Action.RECONNECT_NOW else self._backoff.next()
        await self._emit(Notice(DISCONNECTED, code=code, text=f"{said}; next attempt in {delay:.2f} s"))
        await asyncio.sleep(delay)

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
