"""A careful client-conformance adapter on python-socketio (see docs/CLIENTS.md).

The runner starts it once per scenario with PROTEUS_TASK (connect, send,
stream, two-streams, rejoin or history) and the other PROTEUS_* variables; it
prints one JSON line per thing the SDK reported. Careful means: wait for
`success` before calling the connection authenticated, never reconnect
(except in `rejoin`, which reconnects and joins its chat again after every
`success`), listen for `message:done` before sending and present done's
`content` (never the concatenated deltas), tell concurrent replies apart by
done's `respondedToId`, give up after PROTEUS_TIMEOUT_MS, page the history
by cursor and check the count against `meta.total`, and turn every error ack,
`error` event and error envelope into an `error` line.

    pip install "python-socketio[client]"    # python-socketio + websocket-client
    proteus-conformance client --command 'python careful.py'
"""
import json
import os
import sys
import threading
import time
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


_say_lock = threading.Lock()


def say(**line):
    with _say_lock:  # handlers run on their own threads: one whole line at a time
        print(json.dumps(line), flush=True)


def message_of(data, fallback):
    """The text of an `error {message}` payload (or of a plain string)."""
    if isinstance(data, dict):
        return data.get("message") or fallback
    return data or fallback


def connect(reconnection=False):
    """Connect with auth {token}; return the socket once the server says `success`."""
    # a reconnecting client waits 0.5 s, 1 s, 2 s … between attempts (the runner allows 5 s to rejoin)
    sio = socketio.Client(reconnection=reconnection, reconnection_delay=0.5, reconnection_delay_max=2)
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


def two_streams():
    """Send two streamed messages back to back; present each reply by its own `message:done`."""
    sio = connect()
    try:
        dones, errors, changed = {}, [], threading.Condition()

        def on_done(message):  # replies interleave: tell them apart by respondedToId
            if message.get("chatId", CHAT) == CHAT and message.get("respondedToId"):
                with changed:
                    dones.setdefault(message["respondedToId"], message)
                    changed.notify_all()

        def on_error(data=None):
            with changed:
                errors.append(message_of(data, "the server sent an error event"))
                changed.notify_all()

        sio.on("message:done", on_done)
        sio.on("error", on_error)
        request(sio, "chat:join", {"chatId": CHAT})
        state = json.loads(env("PROTEUS_STATE") or "{}")
        sent = []  # (message id, deadline): the time limit runs from each send's ack
        for content in (env("PROTEUS_CONTENT", ""), env("PROTEUS_CONTENT_2", "")):
            body = {"chatId": CHAT, "content": content, "streamResponse": True, "state": state}
            sent.append((request(sio, "message:send", body)["message"]["id"], time.monotonic() + TIMEOUT))
        for message_id, deadline in sent:
            with changed:
                changed.wait_for(lambda: message_id in dones or errors, max(0, deadline - time.monotonic()))
                done = dones.get(message_id)
                if done is None and errors:
                    raise Failure(errors[0])
            if done is None:
                say(event="timeout")
            else:
                say(event="final", content=done["content"], messageId=done.get("id"))
    finally:
        sio.disconnect()


def rejoin():
    """Stay in the chat across reconnections: the server forgets its rooms, so join after every `success`."""
    sio = connect(reconnection=True)
    try:
        arrived, got, failed, content = threading.Event(), threading.Event(), [], env("PROTEUS_CONTENT", "")

        def fail(message):
            failed.append(message)
            arrived.set()

        def on_message(message):
            if isinstance(message, dict) and message.get("chatId", CHAT) == CHAT:
                say(event="received", messageId=message.get("id"), content=message.get("content"))
                if message.get("content") == content:
                    got.set()
                    arrived.set()

        def on_success(data=None):  # a new connection, authenticated: its rooms are empty
            print("authenticated again: joining the chat", file=sys.stderr)
            try:
                request(sio, "chat:join", {"chatId": CHAT})
            except Failure as e:
                fail(f"joining again: {e}")

        sio.on("message", on_message)
        sio.on("success", on_success)
        sio.on("error", lambda data=None: fail(message_of(data, "the server sent an error event")))
        sio.on("disconnect", lambda *reason: print(f"disconnected {reason}", file=sys.stderr))
        request(sio, "chat:join", {"chatId": CHAT})
        say(event="connected")
        if not arrived.wait(TIMEOUT):
            return say(event="timeout")
        if failed and not got.is_set():
            raise Failure(failed[0])
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


TASKS = {"connect": connect_task, "send": lambda: send(False), "stream": lambda: send(True),
         "two-streams": two_streams, "rejoin": rejoin, "history": history}

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
