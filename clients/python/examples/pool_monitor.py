#!/usr/bin/python3
"""Prints the status of a pool's workers: the room's state, then each change.
Usage: pool_monitor.py POOL_ID [URL]  (the token, if any, in ROOMCAST_TOKEN)"""
import asyncio, os, sys

import roomcast


async def main(pool: str, url: str) -> None:
    async with roomcast.Client(url, token=os.environ.get("ROOMCAST_TOKEN")) as client:
        client.subscribe(f"pool:{pool}", state=True, conflate=True)  # the latest status is enough
        async for msg in client:
            if isinstance(msg, roomcast.Subscribed) and msg.state is not None:  # start over from it
                for e in msg.state:
                    if e.event == "worker.status_changed":
                        print(f"{e.data['worker_id']}: {e.data['status']}")
            elif isinstance(msg, roomcast.Event) and msg.event == "worker.status_changed":
                print(f"{msg.data['worker_id']}: {msg.data['status']}")
            elif isinstance(msg, roomcast.Event) and msg.event == "worker.removed":
                print(f"{msg.data['worker_id']}: removed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "ws://127.0.0.1:8690"))
