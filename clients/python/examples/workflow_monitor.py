#!/usr/bin/python3
"""Prints a workflow's progress: every stage, from the start of its history.
Usage: workflow_monitor.py WORKFLOW_ID [URL]  (the token, if any, in ROOMCAST_TOKEN)"""
import asyncio, os, sys

import roomcast


async def main(workflow: str, url: str) -> None:
    async with roomcast.Client(url, token=os.environ.get("ROOMCAST_TOKEN")) as client:
        client.subscribe(f"workflow:{workflow}", history=True)
        async for msg in client:
            if isinstance(msg, roomcast.Subscribed) and not msg.recovered:
                print("(earlier events are gone: retention or a recreated stream)")
            elif isinstance(msg, roomcast.Event):
                d = msg.data if isinstance(msg.data, dict) else {}
                what = d.get("stage_name") or d.get("error") or d.get("adapter") or ""
                print(f"{msg.ts}  {msg.event}  {what}".rstrip())
                if msg.event in ("workflow.completed", "workflow.failed"):
                    return


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "ws://127.0.0.1:8690"))
