#!/usr/bin/env python3
"""A small ProteusAI plugin, standard library only.

It answers the webhook challenge, keeps the inst- token PLUGIN_INSTALLED
hands it, and answers every AGENT_MESSAGE_RECEIVED with a streamed reply:
chunks POSTed to /api/messages with isStreaming: true, closed by one with
isStreaming: false (docs/PROTOCOL.md, R20-R25).

    python3 examples/plugin.py [--port 4010] [--api http://127.0.0.1:4000] [--token inst-...]

With the mock:
    python3 examples/plugin.py &
    cargo run --release -p proteus-mock -- --plugin-url http://127.0.0.1:4010/webhook
    then message the "Plugin Agent" (chat 682f4b313981b5f54e96ea4e) and watch the reply stream.
"""
import argparse
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"token": None, "api": "http://127.0.0.1:4000"}


def post(path, body):
    req = urllib.request.Request(
        state["api"] + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + state["token"]},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status


def stream_reply(message):
    """Streams 'You said: <content>' word by word as the agent."""
    words = ("You said: " + message["content"]).split(" ")
    common = {"chatId": message["chatId"], "respondedToId": message["id"], "streamId": "reply-" + message["id"]}
    try:
        for i, word in enumerate(words):
            chunk = word if i == len(words) - 1 else word + " "
            post("/api/messages", {**common, "contentDelta": chunk, "isStreaming": True})
            time.sleep(0.05)
        status = post("/api/messages", {**common, "isStreaming": False})
        print(f"plugin: replied to {message['id']} through {state['api']} ({status})", file=sys.stderr)
    except Exception as e:  # a plugin must not die on one failed reply
        print(f"plugin: reply failed: {e}", file=sys.stderr)


class Webhook(BaseHTTPRequestHandler):
    def do_POST(self):
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        name = event.get("name")
        answer = {"received": name}
        if name == "WEBHOOK_CHALLENGE":
            answer = {"challenge": event["challenge"]}
        elif name == "PLUGIN_INSTALLED":
            state["token"] = event["token"]["token"]
            print(f"plugin: installed as {event['pluginInstance']['id']}, token kept", file=sys.stderr)
        elif name == "AGENT_MESSAGE_RECEIVED" and state["token"]:
            # Answer the webhook at once; reply in the background.
            threading.Thread(target=stream_reply, args=(event["message"],), daemon=True).start()
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("plugin: " + fmt % args, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=4010, help="port to listen on (0: any free port)")
    ap.add_argument("--api", default="http://127.0.0.1:4000", help="the ProteusAI server to reply to")
    ap.add_argument("--token", help="the inst- token, if PLUGIN_INSTALLED will not come")
    args = ap.parse_args()
    state["api"], state["token"] = args.api.rstrip("/"), args.token
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Webhook)
    print(json.dumps({"webhook": f"http://127.0.0.1:{server.server_port}/webhook"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
