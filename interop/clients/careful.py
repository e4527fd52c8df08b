"""A careful client-conformance adapter on python-socketio (see docs/CLIENTS.md).

The runner starts it once per scenario with PROTEUS_TASK (connect, send,
stream or history) and the other PROTEUS_* variables; it prints one JSON line
per thing the SDK reported. Careful means: wait for `success` before calling
the connection authenticated, never reconnect, listen for `message:done`
before sending and present done's `content` (never the concatenated deltas),
give up after PROTEUS_TIMEOUT_MS, page the history by cursor and check the
count against `meta.total`, and turn every error ack, `error` event and error
envelope into an `error` line.

    pip install "python-socketio[client]"    # python-socketio + websocket-client
    proteus-conformance client --command 'python careful.py'
"""
import json
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import socketio

env = os.environ.get
URL, TOKEN, CHAT = env("PROTEUS_URL", ""), env("PROTEUS_TOKEN", ""), env("PROTEUS_CHAT_ID", "")
TIMEOUT = int(env("PROTEUS_TIMEOUT_MS") or 2000) / 1000


class Failure(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def say(**line):
    print(json.dumps(line), flush=True)


def message_of(data, fallback):
    """The text of an `error {message}` payload (or of a plain string)."""
    if isinstance(data, dict):
        return data.get("message") or fallback
    return data or fallback


def connect():
    """Connect with auth {token}; return the socket once the server says `success`."""
    sio = socketio.Client(reconnection=False)
    outcome, settled = {}, threading.Event()

    def settle(**result):
        outcome.setdefault("result", result)  # the first answer wins
        settled.set()

    sio.on("success", lambda data=None: settle(ok=True))
    sio.on("error", lambda data=None: settle(error=message_of(data, "the server refused the connection")))
    sio.on("disconnect", lambda *reason: settle(error="disconnected before authentication"))
    # a server may refuse in the CONNECT instead: python-socketio then raises a generic
    # "One or more namespaces failed to connect", so keep the server's own message
    sio.on("connect_error", lambda data=None: settle(error=message_of(data, "cannot connect")))
    try:
        sio.connect(URL, auth={"token": TOKEN}, transports=["websocket"], wait_timeout=5)
    except socketio.exceptions.ConnectionError as e:
        raise Failure(outcome.get("result", {}).get("error") or str(e))
    if not settled.wait(5):
        outcome["result"] = {"error": "no answer to the connection"}
    if "error" in outcome["result"]:
        sio.disconnect()
        raise Failure(outcome["result"]["error"])
    return sio


def request(sio, event, payload):
    """Emit with an ack; return the ack's `data` or raise with its error message."""
    try:
        ack = sio.call(event, payload, timeout=5)
    except socketio.exceptions.TimeoutError:
        raise Failure(f"no ack for {event}")
    if not isinstance(ack, dict):
        raise Failure(f"{event}: unexpected ack {ack!r}")
    if ack.get("error"):
        raise Failure(ack["error"].get("message") or f"{event} failed")
    return ack.get("data")


def send(stream):
    sio = connect()
    try:
        done, finished = {}, threading.Event()

        def on_done(message):
            if message.get("chatId", CHAT) == CHAT and not finished.is_set():
                done.update(message)
                finished.set()

        def on_error(data=None):  # an `error` event: something failed without an ack
            done.setdefault("error", message_of(data, "the server sent an error event"))
            finished.set()

        sio.on("message:done", on_done)
        sio.on("error", on_error)
        request(sio, "chat:join", {"chatId": CHAT})
        body = {"chatId": CHAT, "content": env("PROTEUS_CONTENT", "")}
        if stream:
            body.update(streamResponse=True, state=json.loads(env("PROTEUS_STATE") or "{}"))
        sent = request(sio, "message:send", body)
        if not stream:
            return say(event="sent", messageId=sent["message"]["id"])
        if not finished.wait(TIMEOUT):
            return say(event="timeout")
        if "error" in done:
            raise Failure(done["error"])
        say(event="final", content=done["content"], messageId=done.get("id"))
    finally:
        sio.disconnect()


def get(path, query):
    url = f"{URL}{path}?{urllib.parse.urlencode(query, safe='@')}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not (200 <= status < 300 and isinstance(body, dict) and body.get("ok")):
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        raise Failure(message or f"HTTP {status}", status)
    return body


def history():
    ids, cursor, total = [], None, None
    for _ in range(1000):
        query = {"@limit": 20}
        if cursor:
            query["@cursor"] = cursor
        body = get(f"/api/chats/{urllib.parse.quote(CHAT)}/messages", query)
        if total is None:
            total = (body.get("meta") or {}).get("total")
        page = body.get("data") or []
        if not page:
            break
        ids += [m["id"] for m in page]
        cursor = page[-1]["id"]
    if len(set(ids)) != len(ids):
        raise Failure("history has duplicates")
    if total is not None and total != len(ids):
        raise Failure(f"history incomplete: {len(ids)} of {total}")
    say(event="history", ids=ids)


def connect_task():
    connect().disconnect()
    say(event="connected")


TASKS = {"connect": connect_task, "send": lambda: send(False), "stream": lambda: send(True), "history": history}

if __name__ == "__main__":
    try:
        task = env("PROTEUS_TASK", "")
        if task not in TASKS:
            raise Failure(f"unknown PROTEUS_TASK {task!r}: expected one of {', '.join(TASKS)}")
        TASKS[task]()
    except Exception as e:  # every failure the SDK surfaces becomes an `error` line
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        line = {"event": "error", "message": str(e) or type(e).__name__}
        if getattr(e, "status", None):
            line["status"] = e.status
        say(**line)
    os._exit(0)  # don't wait on the client's background threads
