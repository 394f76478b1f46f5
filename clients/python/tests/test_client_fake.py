"""The client against a fake server, for what a real node never does: frames
that are not the protocol, and a node that goes silent (a cut network).
Everything else is tested against real nodes (test_client_node.py and
clients/conformance)."""

import asyncio
import json

import pytest
import websockets

import roomcast

DEADLINE = 30  # seconds: the machine is busy


async def serve(handler):
    """A WebSocket server on a free loopback port; returns it and its URL."""
    server = await websockets.serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    return server, f"ws://127.0.0.1:{port}"


async def take(client, n):
    """The next n items the client hands over."""
    out = []
    async def run():
        async for msg in client:
            out.append(msg)
            if len(out) == n:
                return
    await asyncio.wait_for(run(), DEADLINE)
    return out


def test_bad_input_is_reported_and_skipped():
    async def handler(ws, *_):
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong", "id": msg.get("id")}))
            elif msg.get("event") == "subscribe":
                await ws.send("this is not JSON")
                await ws.send(b"\x01\x02")
                await ws.send("[1]")
                await ws.send(json.dumps({"type": "gossip"}))
                await ws.send(json.dumps({"type": "event", "event": "tick", "seq": 5}))
                await ws.send(json.dumps({"type": "event", "event": "tick", "room": "pool:p1", "seq": "5"}))
                await ws.send(json.dumps({"type": "response", "event": "subscribe", "id": msg["id"], "data": {
                    "status": "subscribed", "channel": "pool:p1", "seq": 0, "replayed": 0, "recovered": True,
                    "epoch": "e1"}}))
                await ws.send(json.dumps({"type": "event", "event": "tick", "room": "pool:p1", "seq": 1,
                                          "data": {"n": 1}, "future_field": True}))

    async def main():
        server, url = await serve(handler)
        try:
            async with roomcast.Client(url) as client:
                client.subscribe("pool:p1")
                return await take(client, 9)
        finally:
            server.close()

    got = asyncio.run(main())
    assert got[0].kind == roomcast.CONNECTED
    bad = [m.text for m in got[1:7]]
    assert all(m.kind == roomcast.BAD_INPUT for m in got[1:7]), got
    assert "not JSON" in bad[0] and "binary" in bad[1] and "not a JSON object" in bad[2]
    assert "unknown type" in bad[3] and "without a room" in bad[4] and "valid seq" in bad[5]
    assert isinstance(got[7], roomcast.Subscribed) and got[7].epoch == "e1"
    assert isinstance(got[8], roomcast.Event) and got[8].data == {"n": 1}


def test_silent_node_is_pinged_then_dropped_and_the_client_reconnects():
    pings = []
    connections = []

    async def handler(ws, *_):
        connections.append(ws)
        n = len(connections)
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == "ping":
                pings.append((n, msg.get("id")))
                if msg.get("id") == "hello":
                    await ws.send(json.dumps({"type": "pong", "id": "hello"}))
                # later pings go unanswered: the network is "cut"

    async def main():
        server, url = await serve(handler)
        try:
            client = roomcast.Client(url, ping_after=0.3, dead_after=0.5, backoff_min=0.05, backoff_max=0.1)
            async with client:
                return await take(client, 3)
        finally:
            server.close()

    got = asyncio.run(main())
    assert [m.kind for m in got] == [roomcast.CONNECTED, roomcast.DISCONNECTED, roomcast.CONNECTED]
    assert got[1].code == 1006 and "no answer to a ping" in got[1].text
    assert (1, "alive") in pings  # the app-level ping was sent after the silence
    assert len(connections) == 2


def test_stop_raises_stopped_with_code_and_reason():
    # A real node sends 4029 after sustained rate-limit violations; this
    # fake sends it at once, so that the test does not have to flood.
    async def handler(ws, *_):
        await ws.close(4029, "rate limit")

    async def main():
        server, url = await serve(handler)
        try:
            async with roomcast.Client(url) as client:
                with pytest.raises(roomcast.Stopped) as stop:
                    await asyncio.wait_for(take(client, 100), DEADLINE)
                with pytest.raises(roomcast.Stopped):  # and again, for a caller that goes on
                    await client.__anext__()
                return stop.value
        finally:
            server.close()

    stop = asyncio.run(main())
    assert (stop.code, stop.reason) == (4029, "rate limit")
