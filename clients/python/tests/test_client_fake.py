"""The client against a fake server, for what a real node never does: frames
that are not the protocol, and a node that goes silent (a cut network).
Everything else is tested against real nodes (test_client_node.py and
clients/conformance)."""

import asyncio
import base64
import json
import ssl
import subprocess
import time

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


async def _requests(ws):
    """The client's messages but pings, parsed; pings are answered."""
    async for raw in ws:
        msg = json.loads(raw)
        if msg.get("type") == "ping":
            await ws.send(json.dumps({"type": "pong", "id": msg.get("id")}))
            continue
        yield msg


async def take_until(client, done):
    """What the client hands over, up to the first item for which done is true."""
    out = []
    async def run():
        async for msg in client:
            out.append(msg)
            if done(msg):
                return
    await asyncio.wait_for(run(), DEADLINE)
    return out


async def collect(client, out):
    """Appends what the client hands over to out until it stops (raises Stopped)."""
    async for msg in client:
        out.append(msg)


def test_subscribing_a_followed_room_with_a_position_leaves_the_old_subscription_first():
    # Event 12 was on its way before the node read the client's next
    # message: the old subscription's. Handed over, it would become the
    # kept seq above since 5, and the replay asked for would be dropped.
    requests = []

    async def handler(ws, *_):
        async for msg in _requests(ws):
            requests.append(msg)
            if len(requests) == 1:
                await ws.send(_subscribed(msg["id"], 10))
                await ws.send(_event(11))
            elif msg.get("event") == "subscribe":
                await ws.send(_event(12))
                if requests[-2].get("event") == "unsubscribe":
                    await ws.send(json.dumps({"type": "response", "event": "unsubscribe", "id": requests[-2]["id"],
                                              "data": {"status": "unsubscribed", "channel": "pool:x"}}))
                for seq in range(6, 13):
                    await ws.send(_event(seq))
                await ws.send(_subscribed(msg["id"], 12, 7))
                await ws.send(_event(13))

    async def main():
        server, url = await serve(handler)
        try:
            async with roomcast.Client(url) as client:
                client.subscribe("pool:x")
                got = await take(client, 3)  # connected, subscribed, event 11
                client.subscribe("pool:x", since=5, epoch="e1")
                return got + await take_until(client, lambda m: isinstance(m, roomcast.Event) and m.seq == 13)
        finally:
            server.close()

    got = asyncio.run(main())
    assert [(r["event"], r.get("data")) for r in requests[1:]] == [
        ("unsubscribe", {"channel": "pool:x"}), ("subscribe", {"channel": "pool:x", "since": 5, "epoch": "e1"})]
    assert [m.seq for m in got if isinstance(m, roomcast.Event)] == [11, 6, 7, 8, 9, 10, 11, 12, 13]
    subs = [m for m in got if isinstance(m, roomcast.Subscribed)]
    assert [s.resumed for s in subs] == [False, True]  # every subscribe of a room after its first


def _jwt(exp):
    """An unsigned JWT with exp: the client reads exp and never verifies."""
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part({'sub': 'u1', 'exp': exp})}.sig"


def test_a_forbidden_room_is_subscribed_again_once_a_new_token_is_accepted():
    subscribes = []

    async def handler(ws, *_):
        async for msg in _requests(ws):
            if msg.get("event") == "auth":
                await ws.send(json.dumps({"type": "response", "event": "auth", "id": msg["id"], "data": {
                    "status": "authenticated", "user_id": "u1", "expires_at": "2099-01-01T00:00:00Z"}}))
            elif msg.get("event") == "subscribe":
                subscribes.append(msg)
                if len(subscribes) == 1:
                    await ws.send(json.dumps({"type": "error", "event": "subscribe", "id": msg["id"],
                                              "data": {"code": "FORBIDDEN", "message": "not yours"}}))
                else:
                    await ws.send(_subscribed(msg["id"], 10))

    async def refresh():
        return _jwt(time.time() + 3600)

    async def main():
        server, url = await serve(handler)
        try:
            # A token of 2 s is refreshed at half its life.
            async with roomcast.Client(url, token=_jwt(time.time() + 2), refresh=refresh) as client:
                client.subscribe("pool:x")
                return await take_until(client, lambda m: isinstance(m, roomcast.Subscribed))
        finally:
            server.close()

    got = asyncio.run(main())
    kinds = [getattr(m, "kind", type(m).__name__) for m in got]
    assert kinds == [roomcast.CONNECTED, roomcast.REQUEST_ERROR, roomcast.TOKEN_REFRESHED, "Subscribed"], got
    assert got[1].error == "FORBIDDEN" and got[1].room == "pool:x"
    assert len(subscribes) == 2


def test_unauthenticated_without_a_refresh_callback_stops_after_a_disconnected_notice():
    async def handler(ws, *_):
        async for msg in _requests(ws):
            if msg.get("event") == "subscribe":
                await ws.send(json.dumps({"type": "error", "event": "subscribe", "id": msg["id"],
                                          "data": {"code": "UNAUTHENTICATED", "message": "a token is required"}}))

    async def main():
        server, url = await serve(handler)
        got = []
        try:
            async with roomcast.Client(url) as client:
                client.subscribe("pool:x")
                with pytest.raises(roomcast.Stopped) as stop:
                    await asyncio.wait_for(collect(client, got), DEADLINE)
                return got, stop.value
        finally:
            server.close()

    got, stop = asyncio.run(main())
    assert stop.code == 0 and "token" in stop.reason
    assert [m.kind for m in got] == [roomcast.CONNECTED, roomcast.DISCONNECTED], got
    assert got[1].code == 1000 and got[1].text.endswith("; stopping") and "UNAUTHENTICATED" in got[1].text


def test_an_untrusted_certificate_stops_with_code_0(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)

    async def handler(ws, *_):
        async for _ in ws:
            pass

    async def main():
        server = await websockets.serve(handler, "127.0.0.1", 0, ssl=tls)
        port = next(iter(server.sockets)).getsockname()[1]
        got = []
        try:
            async with roomcast.Client(f"wss://127.0.0.1:{port}") as client:
                with pytest.raises(roomcast.Stopped) as stop:
                    await asyncio.wait_for(collect(client, got), DEADLINE)
                return got, stop.value
        finally:
            server.close()

    got, stop = asyncio.run(main())
    assert stop.code == 0 and "certificate" in stop.reason  # 0: no connection opened
    assert [(m.kind, m.code) for m in got] == [(roomcast.DISCONNECTED, 0)], got
    assert "certificate" in got[0].text and got[0].text.endswith("; stopping")
