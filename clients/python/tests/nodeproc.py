"""A real roomcast node for the tests: `roomcast serve` (with its embedded
NATS) as a process of its own, on free loopback ports. The binary comes
from ROOMCAST_BIN (python_test.go builds it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from typing import Optional

BIN = os.environ.get("ROOMCAST_BIN", "")
SECRET = "python-client-tests-secret-0123456789"  # an HMAC secret of 32+ bytes, for tests only
DEADLINE = 60.0  # seconds: two busy cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One node; start() again after stop() restarts it on the same ports
    and data directory (the stream survives)."""

    def __init__(self, data_dir: str, *flags: str, auth: bool = False) -> None:
        self.data_dir = data_dir
        self.flags = list(flags)
        self.auth = auth
        self.ws_port, self.nats_port, self.admin_port = free_port(), free_port(), free_port()
        self.url = f"ws://127.0.0.1:{self.ws_port}"
        self.nats = f"nats://127.0.0.1:{self.nats_port}"
        self.proc: Optional[subprocess.Popen] = None
        self.log = open(os.path.join(data_dir, "node.log"), "ab")

    def _env(self) -> dict:
        env = dict(os.environ)
        env.pop("ROOMCAST_JWT_SECRET", None)
        if self.auth:
            env["ROOMCAST_JWT_SECRET"] = SECRET
        return env

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", f"127.0.0.1:{self.ws_port}", "--nats-listen", f"127.0.0.1:{self.nats_port}",
             "--admin-listen", f"127.0.0.1:{self.admin_port}", "--data-dir", self.data_dir, *self.flags],
            stdout=self.log, stderr=subprocess.STDOUT, env=self._env())
        deadline = time.monotonic() + DEADLINE
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"roomcast serve exited with {self.proc.returncode}; see {self.log.name}")
            if time.monotonic() > deadline:
                raise TimeoutError("roomcast serve did not become ready")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        self.log.close()

    def publish(self, room: str, event: str, data: dict) -> None:
        subprocess.run([BIN, "publish", "--nats", self.nats, room, event, json.dumps(data)],
                       check=True, capture_output=True, timeout=DEADLINE)

    async def apublish(self, room: str, event: str, data: dict) -> None:
        await asyncio.to_thread(self.publish, room, event, data)

    def token(self, ttl: str = "1h", user: str = "u1", secret: str = SECRET) -> str:
        out = subprocess.run([BIN, "token", "--ttl", ttl, "--user", user, "--perm", "pool:read"],
                             check=True, capture_output=True, timeout=DEADLINE,
                             env={**os.environ, "ROOMCAST_JWT_SECRET": secret})
        return out.stdout.decode().strip()
