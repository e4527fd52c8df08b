"""The Thenvoi agent task (docs/CLIENTS.md, "Thenvoi (Band) agents") on Band's
own Python SDK, band-sdk, unmodified: the SDK connects, joins its channels,
filters and claims messages (/processing before the handler, /processed after
it); the handler here does the work (one reply mentioning the sender) and
reports it. Graded by `proteus-conformance client --protocol thenvoi`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from band import Agent, LogSettings
from band.core.simple_adapter import SimpleAdapter

ENV = os.environ
URL = ENV["PROTEUS_URL"].rstrip("/")
WS_URL = URL.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/api/v1/socket/websocket"
LAST = ENV.get("PROTEUS_CONTENT", "")
TIMEOUT = int(ENV.get("PROTEUS_TIMEOUT_MS", "2000")) / 1000
LINGER = int(ENV.get("PROTEUS_LINGER_MS", "500")) / 1000


def say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Work(SimpleAdapter[str]):
    def __init__(self) -> None:
        super().__init__()
        self.last_done = asyncio.Event()

    async def on_message(self, msg, tools, history, participants_msg, contacts_msg, *,
                         is_session_bootstrap, room_id):
        if msg.content.startswith("fail:"):  # the runner asks for work that fails
            if msg.content == LAST:
                self.last_done.set()
            say("error", message="the work failed, as asked")
            raise RuntimeError("the work failed, as asked")
        await tools.send_message(f"handled: {msg.content}", mentions=[msg.sender_id])
        # The SDK marks the message processed when this returns.
        say("handled", messageId=msg.id)
        if msg.content == LAST:
            self.last_done.set()


async def main() -> int:
    work = Work()
    agent = Agent.create(adapter=work, agent_id=ENV["THENVOI_AGENT_ID"],
                         api_key=ENV["THENVOI_API_KEY"], ws_url=WS_URL, rest_url=URL)
    try:
        async with asyncio.timeout(TIMEOUT):
            await agent.start()
            say("connected")
            await work.last_done.wait()
        await asyncio.sleep(LINGER)
    except TimeoutError:
        say("timeout")
    except Exception as error:  # noqa: BLE001 -- reported as a line
        say("error", message=f"{type(error).__name__}: {error}")
    finally:
        await agent.stop(timeout=5)
    return 0


if __name__ == "__main__":
    LogSettings().configure()
    sys.exit(asyncio.run(main()))
