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


def _event(seq):
    return json.dumps({"type": "event", "event": "e", "room": "pool:x", "seq": seq, "data": {"n": seq}})


def _subscribed(rid, seq, replayed=0):
    return json.dumps({"type": "response", "event": "subscribe", "id": rid, "data": {
        "status": "subscribed", "channel": "pool:x", "seq": seq, "replayed": replayed, "recovered": True,
        "epoch": "e1"}})


def test_events_of_a_left_subscription_are_dropped_when_the_room_is_subscribed_again():
    # Event 12 was on its way before the node read the unsubscribe: it is
    # the old subscription's. Handed over, it would become the new
    # subscription's position, and the history the new subscribe asked for
    # (seqs 1..12) would be dropped as duplicates.
    async def handler(ws, *_):
        requests = []
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong", "id": msg.get("id")}))
                continue
            requests.append(msg)
            if len(requests) == 1:
                await ws.send(_subscribed(msg["id"], 10))
                await ws.send(_event(11))
            elif len(requests) == 3:
                unsub, sub = requests[1], requests[2]
                await ws.send(_event(12))
                await ws.send(json.dumps({"type": "response", "event": "unsubscribe", "id": unsub["id"],
                                          "data": {"status": "unsubscribed", "channel": "pool:x"}}))
                for seq in range(1, 13):
                    await ws.send(_event(seq))
                await ws.send(_subscribed(sub["id"], 12, 12))

    async def main():
        server, url = await serve(handler)
        try:
            async with roomcast.Client(url) as client:
                client.subscribe("pool:x")
                got = await take(client, 3)  # connected, subscribed, event 11
                client.unsubscribe("pool:x")
                client.subscribe("pool:x", history=True)
                out = []
                async def run():
                    async for msg in client:
                        out.append(msg)
                        if isinstance(msg, roomcast.Subscribed):
                            return
                await asyncio.wait_for(run(), DEADLINE)
                return got + out
        finally:
            server.close()

    got = asyncio.run(main())
    seqs = [m.seq for m in got if isinstance(m, roomcast.Event)]
    assert seqs == [11] + list(range(1, 13)), seqs


def test_unsubscribe_refused_rate_limited_is_sent_again():
    unsubscribes = []

    async def handler(ws, *_):
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong", "id": msg.get("id")}))
            elif msg.get("event") == "subscribe":
                await ws.send(_subscribed(msg["id"], 10))
            elif msg.get("event") == "unsubscribe":
                unsubscribes.append(msg)
                if len(unsubscribes) == 1:
                    await ws.send(json.dumps({"type": "error", "event": "unsubscribe", "id": msg["id"],
                                              "data": {"code": "RATE_LIMITED", "message": "slow down"}}))
                    await ws.send(_event(11))  # still a member: dropped
                else:
                    await ws.send(json.dumps({"type": "response", "event": "unsubscribe", "id": msg["id"],
                                              "data": {"status": "unsubscribed", "channel": "pool:x"}}))

    async def main():
        server, url = await serve(handler)
        try:
            async with roomcast.Client(url, backoff_min=0.05, backoff_max=0.1) as client:
                client.subscribe("pool:x")
                got = await take(client, 2)
                client.unsubscribe("pool:x")
                got += await take(client, 1)
                for _ in range(DEADLINE * 20):
                    if len(unsubscribes) >= 2:
                        break
                    await asyncio.sleep(0.05)
                return got
        finally:
            server.close()

    got = asyncio.run(main())
    assert got[2].kind == roomcast.REQUEST_ERROR and got[2].error == "RATE_LIMITED" and got[2].room == "pool:x"
    assert len(unsubscribes) == 2, unsubscribes
