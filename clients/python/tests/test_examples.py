"""The two examples against a real node: the pool monitor prints the
room's state, then each change; the workflow monitor prints a workflow's
history and stops at its end. Skipped without ROOMCAST_BIN (python_test.go
sets it)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import pytest

from nodeproc import BIN, DEADLINE, Node

pytestmark = pytest.mark.skipif(not BIN, reason="needs ROOMCAST_BIN, a roomcast binary (go test ./clients/python sets it)")

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


class Example:
    """An example as a process of its own, its lines read as they come."""

    def __init__(self, name: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.path.join(EXAMPLES, os.pardir), "PYTHONUNBUFFERED": "1"}
        env.pop("ROOMCAST_TOKEN", None)
        self.proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, name), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=DEADLINE)
        except queue.Empty:
            raise AssertionError("the example printed nothing more") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)
        self.reader.join(DEADLINE)


@pytest.fixture
def node(tmp_path):
    n = Node(str(tmp_path))
    n.start()
    yield n
    n.close()


def test_pool_monitor_prints_the_state_then_changes(node):
    node.publish("pool:p1", "worker.status_changed", {"worker_id": "w1", "status": "busy", "pool_id": "p1"})
    node.publish("pool:p1", "worker.status_changed", {"worker_id": "w1", "status": "idle", "pool_id": "p1"})
    ex = Example("pool_monitor.py", "p1", node.url)
    try:
        first = ex.next_line()
        if first == "w1: busy":
            # The state may be a fraction of a second behind the stream (protocol.md, "State"):
            # then it holds the first status, and the second follows it as an event.
            first = ex.next_line()
        assert first == "w1: idle"
        node.publish("pool:p1", "worker.status_changed", {"worker_id": "w2", "status": "busy", "pool_id": "p1"})
        assert ex.next_line() == "w2: busy"
        node.publish("pool:p1", "worker.removed", {"worker_id": "w1", "pool_id": "p1"})
        assert ex.next_line() == "w1: removed"
    finally:
        ex.close()


def test_workflow_monitor_prints_the_history_and_stops_at_the_end(node):
    node.publish("workflow:w42", "workflow.started", {"workflow_id": "w42"})
    node.publish("workflow:w42", "workflow.stage_completed", {"workflow_id": "w42", "stage_name": "build"})
    ex = Example("workflow_monitor.py", "w42", node.url)
    try:
        assert ex.next_line().endswith("workflow.started")
        assert ex.next_line().endswith("workflow.stage_completed  build")
        node.publish("workflow:w42", "workflow.completed", {"workflow_id": "w42"})
        assert ex.next_line().endswith("workflow.completed")
        assert ex.proc.wait(DEADLINE) == 0
    finally:
        ex.close()
