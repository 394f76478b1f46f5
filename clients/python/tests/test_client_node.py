"""The client against real nodes (`roomcast serve`, started by each test):
drained and restarted, a slow application, tokens refused and refreshed.
Skipped without ROOMCAST_BIN (python_test.go sets it)."""

from __future__ import annotations

import asyncio
import signal
from typing import Callable

import pytest

import roomcast
from nodeproc import BIN, DEADLINE, Node

pytestmark = pytest.mark.skipif(not BIN, reason="needs ROOMCAST_BIN, a roomcast binary (go test ./clients/python sets it)")


class Recorder:
    """The application: takes everything the client hands over, sleeping
    on an event whose data has pause_ms (as the conformance runner does)."""

    def __init__(self, client: roomcast.Client) -> None:
        self.client = client
        self.got: list = []
        self.stopped: roomcast.Stopped | None = None
        self.task = asyncio.create_task(self._take())

    async def _take(self) -> None:
        try:
            async for msg in self.client:
                self.got.append(msg)
                if isinstance(msg, roomcast.Event) and isinstance(msg.data, dict) and msg.data.get("pause_ms"):
                    await asyncio.sleep(msg.data["pause_ms"] / 1000)
        except roomcast.Stopped as stop:
            self.stopped = stop

    def events(self) -> list[roomcast.Event]:
        return [m for m in self.got if isinstance(m, roomcast.Event)]

    def ns(self) -> list[int]:
        return [e.data["n"] for e in self.events()]

    def notices(self, kind: str) -> list[roomcast.Notice]:
        return [m for m in self.got if isinstance(m, roomcast.Notice) and m.kind == kind]

    def subscribed(self) -> list[roomcast.Subscribed]:
        return [m for m in self.got if isinstance(m, roomcast.Subscribed)]

    async def until(self, what: str, cond: Callable[[], bool]) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while not cond():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {self.got[-20:]}")
            await asyncio.sleep(0.05)


@pytest.fixture
def node_dir(tmp_path):
    return str(tmp_path)


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 4 * DEADLINE))


def test_drain_and_restart_resume_each_event_once(node_dir):
    node = Node(node_dir)

    async def main():
        node.start()
        async with roomcast.Client(node.url, backoff_max=1.0) as client:
            client.subscribe("pool:p1", history=True)
            app = Recorder(client)
            for n in (1, 2, 3):
                await node.apublish("pool:p1", "tick", {"n": n})
            await app.until("events 1-3", lambda: app.ns() == [1, 2, 3])
            await asyncio.to_thread(node.stop, signal.SIGTERM)  # a drain: server.draining, then 1001
            await app.until("the drain's close", lambda: any(m.code == 1001 for m in app.notices("disconnected")))
            assert app.notices("draining")
            await asyncio.to_thread(node.start)
            for n in (4, 5):
                await node.apublish("pool:p1", "tick", {"n": n})
            await app.until("events 4-5", lambda: len(app.ns()) >= 5)
            assert app.ns() == [1, 2, 3, 4, 5]
            resumed = [s for s in app.subscribed() if s.resumed]
            assert resumed and resumed[-1].recovered and resumed[-1].since == 3
            assert [e.seq for e in app.events()] == sorted({e.seq for e in app.events()})

    try:
        run(main())
    finally:
        node.close()


def test_slow_application_is_closed_by_the_node_and_resumes(node_dir):
    # A small send queue: the node gives up on a client that stopped
    # reading long before the kernel's buffers are full of its events.
    node = Node(node_dir, "--send-queue-messages", "16", "--send-queue-bytes", "262144")
    total, pad = 300, "x" * 30000

    async def main():
        node.start()
        async with roomcast.Client(node.url, backoff_min=0.05, backoff_max=0.5) as client:
            client.subscribe("pool:slow")
            app = Recorder(client)
            await app.until("subscribed", lambda: app.subscribed())
            await node.apublish("pool:slow", "tick", {"n": 1, "pause_ms": 8000})
            for n in range(2, total + 1):
                await node.apublish("pool:slow", "tick", {"n": n, "pad": pad})
            await app.until("every event", lambda: len(app.ns()) >= total)
            assert app.ns() == list(range(1, total + 1))  # each once, in order
            closes = [m.code for m in app.notices("disconnected")]
            assert closes and set(closes) <= {4008, 1006}, closes

    try:
        run(main())
    finally:
        node.close()


def test_token_is_refreshed_on_the_open_connection(node_dir):
    node = Node(node_dir, auth=True)
    asked = []

    async def refresh() -> str:
        asked.append(1)
        return await asyncio.to_thread(node.token, "1h")

    async def main():
        node.start()
        # 14 s: asked for at 4 s, 10 s before exp (3/4 would be 10.5 s).
        first = await asyncio.to_thread(node.token, "14s")
        async with roomcast.Client(node.url, token=first, refresh=refresh) as client:
            client.subscribe("pool:p1")
            app = Recorder(client)
            await app.until("the refresh", lambda: app.notices("token_refreshed"))
            assert len(asked) == 1 and not app.notices("disconnected")
            assert client.token != first
            await node.apublish("pool:p1", "tick", {"n": 1})
            await app.until("an event after the refresh", lambda: app.ns() == [1])

    try:
        run(main())
    finally:
        node.close()


def test_refused_token_asks_for_a_new_one_or_stops(node_dir):
    node = Node(node_dir, auth=True)

    async def main():
        node.start()
        bad = await asyncio.to_thread(node.token, "1h", "u1", "another-secret-that-is-long-enough-0123")

        async def refresh() -> str:
            return await asyncio.to_thread(node.token, "1h")

        async with roomcast.Client(node.url, token=bad, refresh=refresh, backoff_min=0.05) as client:
            client.subscribe("pool:p1")
            app = Recorder(client)
            await app.until("subscribed with the new token", lambda: app.subscribed())
            assert app.notices("disconnected")[0].code == 1008

        async with roomcast.Client(node.url, token=bad) as client:  # no callback: stop
            client.subscribe("pool:p1")
            app = Recorder(client)
            await app.until("the stop", lambda: app.stopped is not None)
            assert app.stopped.code == 1008 and "authentication failed" in app.stopped.reason

    try:
        run(main())
    finally:
        node.close()


def test_leaving_the_loop_mid_stream_closes_promptly(node_dir):
    # Breaking out with events still coming must end the client's task:
    # Python 3.11's asyncio.wait_for once swallowed that cancellation.
    node = Node(node_dir)

    async def main():
        node.start()
        before = asyncio.all_tasks()
        for n in range(1, 31):
            await node.apublish("pool:many", "tick", {"n": n})
        async def one_round():
            client = roomcast.Client(node.url)
            async with client:
                client.subscribe("pool:many", history=True)
                async for msg in client:
                    if isinstance(msg, roomcast.Event):
                        break
            with pytest.raises(StopAsyncIteration):
                await client.__anext__()

        for _ in range(5):
            await asyncio.wait_for(one_round(), 20)
        assert asyncio.all_tasks() == before  # nothing of the clients is left

    try:
        run(main())
    finally:
        node.close()
