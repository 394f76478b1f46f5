#!/usr/bin/python3
"""The conformance runner of the Python library (clients/conformance/README.md).

Configuration: a JSON object in the environment variable
ROOMCAST_RUNNER_CONFIG. Records: JSON lines on standard output, each
flushed. SIGTERM or SIGINT closes the client and exits 0; a final stop
reports `stopped` and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import roomcast  # noqa: E402


def emit(kind: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def event_n(ev: roomcast.Event) -> int:
    """The event's data.n, or -1."""
    n = ev.data.get("n", -1) if isinstance(ev.data, dict) else -1
    return n if isinstance(n, int) and not isinstance(n, bool) else -1


def subscribe_after(client: roomcast.Client, rooms: list, n: "int | None") -> None:
    """Subscribes the rooms whose after_n is n (None: those without one, at
    the start), each entry once."""
    for r in rooms:
        if r.get("after_n") == n and not r.get("_done"):
            r["_done"] = True
            client.subscribe(r["room"], history=bool(r.get("history")), since=r.get("since"),
                             epoch=r.get("epoch") or None, state=bool(r.get("state")),
                             conflate=bool(r.get("conflate")))


def record(msg: roomcast.Message) -> None:
    """Reports what the library handed over."""
    if isinstance(msg, roomcast.Event):
        emit("event", room=msg.room, seq=msg.seq, event=msg.event, n=event_n(msg), conflated=msg.conflated)
    elif isinstance(msg, roomcast.Subscribed):
        emit("subscribed", room=msg.room, seq=msg.seq, epoch=msg.epoch, replayed=msg.replayed,
             recovered=msg.recovered, resumed=msg.resumed,
             state=len(msg.state) if msg.state is not None else -1)
    else:
        emit("notice", notice=msg.kind, code=msg.code, error=msg.error, room=msg.room, text=msg.text)


def pause_ms(msg: roomcast.Message) -> int:
    """The application's own slowness: an event's data.pause_ms."""
    if isinstance(msg, roomcast.Event) and isinstance(msg.data, dict):
        p = msg.data.get("pause_ms")
        if isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0:
            return int(p)
    return 0


def refresher(url: str):
    """The refresh callback: GET url, the body is the token; not 200 fails."""

    def get() -> str:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.read().decode().strip()
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"refresh_url answered {err.code}") from err

    async def refresh() -> str:
        return await asyncio.to_thread(get)

    return refresh


async def follow(cfg: dict) -> None:
    lo, hi = cfg.get("backoff_min_ms") or 250, cfg.get("backoff_max_ms") or 10000
    client = roomcast.Client(
        cfg["urls"], token=cfg.get("token") or None,
        refresh=refresher(cfg["refresh_url"]) if cfg.get("refresh_url") else None,
        backoff_min=lo / 1000, backoff_max=max(hi, lo) / 1000)
    async with client:
        subscribe_after(client, cfg.get("rooms", []), None)
        emit("ready")
        try:
            async for msg in client:
                record(msg)
                if isinstance(msg, roomcast.Event) and event_n(msg) >= 0:
                    subscribe_after(client, cfg.get("rooms", []), event_n(msg))
                if pause_ms(msg):
                    await asyncio.sleep(pause_ms(msg) / 1000)
        except roomcast.Stopped as stop:
            emit("stopped", code=stop.code, text=stop.reason)


async def main() -> int:
    cfg = json.loads(os.environ["ROOMCAST_RUNNER_CONFIG"])
    task = asyncio.create_task(follow(cfg))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)  # leaving `async with` closes the client
    try:
        await task
    except asyncio.CancelledError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
