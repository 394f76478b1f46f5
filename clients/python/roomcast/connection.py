"""One open WebSocket of a Client: its writer, its reader (with liveness),
and what it does with each frame and error. docs/protocol.md section 3,
"What a client does"."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Optional

from . import _ws
from .messages import (BAD_INPUT, DISCONNECTED, DRAINING, REQUEST_ERROR, TOKEN_REFRESH_FAILED, TOKEN_REFRESHED,
                       BadInput, Draining, Error, Event, Notice, Pong, Response, Stopped, parse_frame)
from .owner import Owner
from .policy import Backoff, ErrorAction, classify_error
from .rooms import Room



class Connection:
    """A connection's requests and what it learnt: which request ids are its
    own, which rooms it refused, and whether its token was accepted."""

    def __init__(self, client: Owner, ws: Any) -> None:
        self._client = client
        self._ws = ws
        self._outgoing: asyncio.Queue[str] = asyncio.Queue()  # requests only: small
        self._pending: dict[str, tuple[str, str]] = {}  # id -> (event, room)
        self._auth_waiters: dict[str, asyncio.Future] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._ids = itertools.count(1)
        self.accepted = False  # the node sent something: the token was not refused
        self.refused: set[str] = set()  # rooms not followed on this connection
        # Rooms subscribed again once a new token is accepted: refused
        # UNAUTHENTICATED, or FORBIDDEN (the new token may allow them).
        self._waiting_auth: set[str] = set()
        # Unsubscribes not answered yet, by room: until then the room's
        # events are the subscription being left, dropped even when the
        # room is subscribed again meanwhile.
        self._leaving: dict[str, int] = {}
        self._unsub_retry: dict[str, Any] = {}  # room -> the Backoff of its RATE_LIMITED unsubscribes
        # Followed rooms whose old subscription may still stand (the
        # unsubscribe before a subscribe from a new position was refused):
        # their next subscribe leaves it first.
        self._leave_first: set[str] = set()

    # --- sending -------------------------------------------------------

    def send(self, msg: dict) -> None:
        """Queues one message for the writer."""
        self._outgoing.put_nowait(json.dumps(msg, separators=(",", ":")))

    def _request(self, event: str, data: Optional[dict], room: str = "") -> str:
        rid = f"{event[0]}{next(self._ids)}"
        self._pending[rid] = (event, room)
        msg: dict = {"type": "request", "event": event, "id": rid}
        if data is not None:
            msg["data"] = data
        self.send(msg)
        return rid

    def subscribe(self, room: Room) -> None:
        """Subscribes room (again): with its kept position when it has one."""
        self.refused.discard(room.name)
        self._waiting_auth.discard(room.name)
        if room.name in self._leave_first:
            self._leave_first.discard(room.name)
            self.unsubscribe(room.name)
        rid = f"s{next(self._ids)}"
        # A subscribe's id stays pending after its response (a catch-up
        # that fails later is told under it) until the room's next
        # subscribe supersedes it.
        for old in [i for i, req in self._pending.items() if req == ("subscribe", room.name)]:
            del self._pending[old]
        self._pending[rid] = ("subscribe", room.name)
        self.send({"type": "request", "event": "subscribe", "id": rid, "data": room.subscribe_data(rid)})

    def unsubscribe(self, name: str) -> None:
        self._leaving[name] = self._leaving.get(name, 0) + 1
        self._request("unsubscribe", {"channel": name}, name)

    def _left(self, name: str) -> None:
        """An unsubscribe of name was answered."""
        n = self._leaving.get(name, 0) - 1
        if n > 0:
            self._leaving[name] = n
        else:
            self._leaving.pop(name, None)

    def authenticate(self, token: str) -> asyncio.Future:
        """Sends an auth request; the future gets None (accepted) or the Error."""
        rid = self._request("auth", {"token": token})
        fut = asyncio.get_running_loop().create_future()
        self._auth_waiters[rid] = fut
        return fut

    def _later(self, delay: float, room: Room) -> None:
        """Subscribes room again after delay, unless it was subscribed (or
        left) in the meantime."""
        current = room.current_id

        def fire() -> None:
            if self._client.room(room.name) is room and room.current_id == current:
                self.subscribe(room)

        self._timers.append(asyncio.get_running_loop().call_later(delay, fire))

    async def _write(self) -> None:
        while True:
            text = await self._outgoing.get()
            try:
                await self._ws.send(text)
            except _ws.ConnectionClosed:
                return  # the reader sees the close and reports it

    # --- serving -------------------------------------------------------

    async def serve(self) -> tuple[int, str]:
        """Subscribes every followed room and reads until the connection
        ends; returns its close code and reason (1006: no close frame)."""
        writer = asyncio.create_task(self._write())
        try:
            # The first message from the node proves the token was accepted
            # (a refused one closes with 1008 before anything else): the
            # pong comes back at once, whatever the rooms.
            self.send({"type": "ping", "id": "hello"})
            for room in self._client.followed():
                self.subscribe(room)
            return await self._read()
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            for timer in self._timers:
                timer.cancel()
            for fut in self._auth_waiters.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("the connection ended"))
            for room in self._client.followed():
                room.on_failure()

    async def _read(self) -> tuple[int, str]:
        # One recv at a time, kept across waits: asyncio.wait (unlike
        # wait_for on Python 3.11) neither cancels it on a timeout nor
        # swallows a cancellation of this task that races with a message.
        recv: Optional[asyncio.Future] = None
        pinged = False
        try:
            while True:
                if recv is None:
                    recv = asyncio.ensure_future(self._ws.recv())
                # Only time spent waiting for the node counts as silence:
                # while the application is slow, this loop is not here.
                wait = self._client.dead_after if pinged else self._client.ping_after
                done, _ = await asyncio.wait({recv}, timeout=wait)
                if not done:
                    if pinged:
                        _ws.abort(self._ws)
                        return 1006, f"no answer to a ping within {self._client.dead_after:g} s"
                    self.send({"type": "ping", "id": "alive"})
                    pinged = True
                    continue
                try:
                    raw = recv.result()
                except _ws.ConnectionClosed as closed:
                    return _ws.close_code(closed)
                finally:
                    recv = None
                pinged = False
                if not self.accepted:
                    self.accepted = True
                    await self._client._on_accepted()
                await self._handle(raw)
        finally:
            if recv is not None:
                recv.cancel()
                await asyncio.gather(recv, return_exceptions=True)

    async def close(self) -> None:
        """Closes with 1000 (the client asked), waiting at most 2 s for the node."""
        try:
            await self._ws.close()  # bounded by the connection's close_timeout
        except Exception:  # noqa: BLE001 - the connection is going away either way
            _ws.abort(self._ws)

    # --- reading -------------------------------------------------------

    async def _handle(self, raw: Any) -> None:
        emit = self._client._emit
        try:
            frame = parse_frame(raw)
        except BadInput as err:
            await emit(Notice(BAD_INPUT, text=str(err)))
            return
        if isinstance(frame, Event):
            if frame.room in self._leaving:
                return  # the subscription being left: a later subscribe's events follow its answer
            room = self._client.room(frame.room)
            if room is None or frame.room in self.refused:
                return  # a room the client no longer follows
            for ev in room.on_event(frame):
                await emit(ev)
        elif isinstance(frame, Draining):
            await emit(Notice(DRAINING, text="the node is draining: reconnecting at once when it closes"))
        elif isinstance(frame, Response):
            await self._on_response(frame)
        elif isinstance(frame, Error):
            await self._on_error(frame)
        elif isinstance(frame, Pong):
            pass

    async def _on_response(self, resp: Response) -> None:
        event, name = self._pending.get(resp.id, ("", ""))
        if event == "subscribe":
            await self._on_subscribed(resp, name)
        elif event == "auth":
            del self._pending[resp.id]
            await self._client._emit(Notice(TOKEN_REFRESHED, text="a new token was accepted"))
            self._resolve_auth(resp.id, None)
            for room_name in sorted(self._waiting_auth):
                room = self._client.room(room_name)
                if room is not None:
                    self.subscribe(room)
        elif event:
            del self._pending[resp.id]
            if event == "unsubscribe":
                self._unsub_retry.pop(name, None)
                self._left(name)

    async def _on_subscribed(self, resp: Response, name: str) -> None:
        room = self._client.room(name)
        if room is None or room.current_id != resp.id or room.awaiting != resp.id:
            return  # left, or superseded by a later subscribe of the room
        emit = self._client._emit
        try:
            held, sub, bad = room.on_response(resp.data)
        except BadInput as err:
            room.on_failure()
            await emit(Notice(BAD_INPUT, room=name, text=f"{err}; subscribing again"))
            self._later(room.retry.next(), room)
            return
        room.retry.reset()
        room.rate.reset()
        for ev in held:
            await emit(ev)
        for text in bad:
            await emit(Notice(BAD_INPUT, room=name, text=f"{text}; the state entry was skipped"))
        await emit(sub)

    def _resolve_auth(self, rid: str, result: Optional[Error]) -> None:
        fut = self._auth_waiters.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_result(result)

    async def _on_error(self, err: Error) -> None:
        emit = self._client._emit
        event, name = self._pending.get(err.id, ("", "")) if err.id else ("", "")
        if event == "auth":
            del self._pending[err.id]
            await emit(Notice(TOKEN_REFRESH_FAILED, error=err.code, text=err.message))
            self._resolve_auth(err.id, err)
            return
        if event == "unsubscribe":
            del self._pending[err.id]
            self._left(name)
            await self._unsubscribe_failed(name, err)
            return
        if event != "subscribe":
            if not err.id and err.event == "subscribe" and err.room:
                await self._left_room(err)  # unasked: a refreshed token no longer allows the room
                return
            await emit(Notice(REQUEST_ERROR, error=err.code, room=name or err.room, text=err.message))
            return
        room = self._client.room(name)
        if room is None or room.current_id != err.id:
            return  # the later subscribe of the room (or its unsubscribe) stands
        room.on_failure()
        await self._subscribe_failed(room, err)

    async def _unsubscribe_failed(self, name: str, err: Error) -> None:
        """An unsubscribe refused RATE_LIMITED is sent again after the
        backoff, unless the room was subscribed again meanwhile."""
        text = err.message
        room = self._client.room(name)
        if err.code == "RATE_LIMITED" and room is not None:
            # It was to leave the old subscription before a subscribe from
            # a new position, which followed it: the old one may stand, and
            # its events cannot be told from the new one's. That subscribe
            # is given up (its answer ignored, the room's events dropped)
            # and both are sent again after the backoff.
            room.on_failure()
            room.current_id = None
            self.refused.add(name)
            self._leave_first.add(name)
            delay = room.rate.next()
            text = f"{text}; leaving and subscribing again in {delay:.2f} s"
            self._later(delay, room)
        elif err.code == "RATE_LIMITED" and room is None:
            backoff = self._unsub_retry.setdefault(name, Backoff(*self._client._backoff_bounds))
            delay = backoff.next()
            text = f"{text}; sending again in {delay:.2f} s"

            def fire() -> None:
                if self._client.room(name) is None:
                    self.unsubscribe(name)

            self._timers.append(asyncio.get_running_loop().call_later(delay, fire))
        await self._client._emit(Notice(REQUEST_ERROR, error=err.code, room=name, text=text))

    async def _left_room(self, err: Error) -> None:
        self.refused.add(err.room)
        self._waiting_auth.add(err.room)
        room = self._client.room(err.room)
        if room is not None:
            room.on_failure()
        await self._client._emit(Notice(REQUEST_ERROR, error=err.code, room=err.room, text=err.message))

    async def _subscribe_failed(self, room: Room, err: Error) -> None:
        emit = self._client._emit
        action = classify_error(err.code)
        if action in (ErrorAction.RETRY_LATER, ErrorAction.NOTHING):
            # A CANCELLED of the room's latest subscribe was not caused by
            # this client (its own supersede changes current_id): retry so
            # that the room is not silently lost.
            delay = room.retry.next()
            await emit(Notice(REQUEST_ERROR, error=err.code, room=room.name,
                              text=f"{err.message}; subscribing again in {delay:g} s"))
            self._later(delay, room)
        elif action is ErrorAction.RESEND_AFTER_BACKOFF:
            delay = room.rate.next()
            await emit(Notice(REQUEST_ERROR, error=err.code, room=room.name,
                              text=f"{err.message}; sending again in {delay:.2f} s"))
            self._later(delay, room)
        elif action is ErrorAction.NEED_TOKEN:
            if not self._client.can_refresh:
                # 1000: the client closes the connection, and stops.
                await emit(Notice(DISCONNECTED, code=1000,
                                  text=f"subscribe {room.name}: {err.code}: {err.message}; stopping"))
                raise Stopped(0, "the node requires a token")
            self._waiting_auth.add(room.name)
            await emit(Notice(REQUEST_ERROR, error=err.code, room=room.name,
                              text=f"{err.message}; asking for a new token"))
            self._client._refresh_now()
        else:
            self.refused.add(room.name)
            if err.code == "FORBIDDEN":
                self._waiting_auth.add(room.name)  # a new token may allow it
            await emit(Notice(REQUEST_ERROR, error=err.code, room=room.name, text=err.message))
