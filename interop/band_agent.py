"""Run a real Band SDK agent (band-sdk 6.0.1, unmodified) against a Thenvoi/Band server.

This is the SDK's own echo-agent starter (docker/band_python_kit/echo-agent/main.py
in band-ai/band-sdk-python): a SimpleAdapter whose on_message replies with
tools.send_message(..., mentions=[msg.sender_id]), run by Agent.create(...). The SDK
does everything else the way it does against app.band.ai: GET /agent/me, the
agent_control / agent_rooms / chat_room / room_participants joins, the startup
/messages/next sync, /processing before the handler and /processed after it.
Only the base URLs differ.

Environment:
    THENVOI_URL     http(s)://host:port of the server (REST base; the socket is
                    ws(s)://host:port/api/v1/socket/websocket, derived from it)
    BAND_AGENT_ID   the agent's uuid
    BAND_AGENT_KEY  the agent's API key
    MODE            echo (default): reply to each message that mentions the agent
                    drain: the same handler, for a restart that works through the
                    backlog the SDK fetches from /messages/next at start-up
    EXIT_AFTER      exit 0 after this many messages were handled (default 1)
    TIMEOUT         exit 1 if that takes longer than this many seconds (default 20)

stdout carries one JSON object per line: {"event": "connected"}, {"event": "message",
"id", "room_id", "sender_id", "content"}, {"event": "replied", "id", "reply_id",
"content"}, then {"event": "done", "handled"} or {"event": "timeout"} / {"event": "error"}.
SDK logs go to stderr (BAND_LOG_LEVEL, default INFO).

    pip install -r interop/requirements.txt
    THENVOI_URL=http://127.0.0.1:4000 BAND_AGENT_ID=... BAND_AGENT_KEY=... python interop/band_agent.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from band import Agent, LogSettings
from band.core.simple_adapter import SimpleAdapter

URL = os.environ["THENVOI_URL"].rstrip("/")
WS_URL = URL.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/api/v1/socket/websocket"
MODE = os.environ.get("MODE", "echo")
EXIT_AFTER = int(os.environ.get("EXIT_AFTER", "1"))
TIMEOUT = float(os.environ.get("TIMEOUT", "20"))


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class EchoAdapter(SimpleAdapter[str]):
    """Reply "echo: <content>" to the sender; the SDK claims and settles the message."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: set[str] = set()
        self.done = asyncio.Event()

    async def on_message(self, msg, tools, history, participants_msg, contacts_msg, *,
                         is_session_bootstrap, room_id):
        emit("message", id=msg.id, room_id=room_id, sender_id=msg.sender_id, content=msg.content)
        reply = await tools.send_message(f"echo: {msg.content}", mentions=[msg.sender_id])
        emit("replied", id=msg.id, reply_id=getattr(reply, "id", None), content=f"echo: {msg.content}")
        self.handled.add(msg.id)
        if len(self.handled) >= EXIT_AFTER:
            self.done.set()  # the SDK marks this message processed after we return


async def main() -> int:
    if MODE not in ("echo", "drain"):
        emit("error", error=f"unknown MODE {MODE!r}")
        return 2
    adapter = EchoAdapter()
    agent = Agent.create(
        adapter=adapter,
        agent_id=os.environ["BAND_AGENT_ID"],
        api_key=os.environ["BAND_AGENT_KEY"],
        ws_url=WS_URL,
        rest_url=URL,
    )
    code = 1
    try:
        async with asyncio.timeout(TIMEOUT):
            await agent.start()  # in drain mode the backlog sync may already run here
            emit("connected", mode=MODE)
            await adapter.done.wait()
        code = 0
    except TimeoutError:
        emit("timeout", handled=len(adapter.handled))
    except Exception as error:  # noqa: BLE001 -- report it as a JSON line, exit 1
        emit("error", error=f"{type(error).__name__}: {error}")
    finally:
        # A graceful stop waits for the in-flight turn, so its /processed is sent.
        await agent.stop(timeout=10)
    if code == 0:
        emit("done", handled=len(adapter.handled))
    return code


if __name__ == "__main__":
    LogSettings().configure()
    sys.exit(asyncio.run(main()))
