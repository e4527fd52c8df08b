#!/usr/bin/env python3
"""End-to-end check of the mock's inspector page (GET /__admin/ui).

Drives Debian's headless Chromium with selenium next to a real python-socketio
client, against a running proteus-mock:

  1. the page renders;
  2. the client's socket (connected with a world user's token, joined to the
     welcome chat) is listed in Connections under its socket id;
  3. a streamed reply to the client's message grows in the Chats view (its
     delta count goes up at least twice, its text grows) and then finishes;
  4. `drop-delta:2` switched on from the Faults form is listed as active, and
     the client's next stream misses its delta 2; the fault is removed again;
  5. a message posted from the composer reaches the client as `message`;
  6. the Disconnect button of the client's row disconnects the client;
  7. each --report-html file opens without console errors and every chart in
     it (<canvas> or <svg>) has something drawn;
  8. the inspector page logged no error or warning; a screenshot of the Chats
     view (step 5) is saved to --screenshot.

Usage:
  python3 interop/inspector_check.py --url http://127.0.0.1:PORT \
      --screenshot OUT.png [--report-html FILE ...]

Needs `pip install -r interop/requirements.txt` (selenium, python-socketio,
websocket-client) and `apt-get install chromium chromium-driver`
(/usr/bin/chromium, /usr/bin/chromedriver; override with $CHROMIUM and
$CHROMEDRIVER). Exit code 0 when every step passed, 1 otherwise, within 90 s.
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

DEADLINE_S = 90
# Step 3's stream: 20 deltas 150 ms apart (3 s) so that the page, polling the
# journal every 0.5 s, samples it growing several times even on a busy CI
# machine.
STREAM_DELAY_MS = 150

try:
    import socketio  # python-socketio
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError as missing:  # pragma: no cover - environment problem
    print(
        f"FAIL setup: {missing}: install the check's packages with "
        "`pip install -r interop/requirements.txt` (selenium, python-socketio, websocket-client)",
        file=sys.stderr,
    )
    sys.exit(1)


class StepFailed(Exception):
    pass


CURRENT = {"step": "setup", "timed_out": False}
STARTED = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - STARTED:5.1f}s] {msg}", flush=True)


def wait_for(what, predicate, timeout, interval=0.1):
    """Polls `predicate` until it returns something truthy; fails naming `what`."""
    end = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except WebDriverException as e:
            last_error = (e.msg or str(e)).strip().splitlines()[0]
        except (KeyError, ValueError, TypeError) as e:
            last_error = str(e)
        if time.monotonic() >= end:
            extra = f" (last error: {last_error})" if last_error else ""
            raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(interval)


# ----------------------------------------------------------------- the mock


class Mock:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def page(self, path):
        """Status and content type of a GET, without reading JSON."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as res:
                return res.status, res.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", "")
        except (urllib.error.URLError, OSError) as e:
            raise StepFailed(f"GET {path}: the mock at {self.url} is unreachable ({e})") from None

    def request(self, method, path, token=None, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return json.loads(res.read().decode() or "{}")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            raise StepFailed(f"{method} {path} answered {e.code}: {text[:300]}") from None
        except (urllib.error.URLError, OSError) as e:
            raise StepFailed(f"{method} {path}: the mock at {self.url} is unreachable ({e})") from None


# -------------------------------------------------------- socket.io client


class Client:
    """A python-socketio client that records every event it gets."""

    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.lock = threading.Lock()
        self.events = []  # (monotonic time, event, data)
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self.sio = socketio.Client(reconnection=False, logger=False, engineio_logger=False)

        @self.sio.on("*")
        def _any(event, *args):
            with self.lock:
                self.events.append((time.monotonic(), event, args[0] if args else None))

        @self.sio.on("disconnect")
        def _disconnect(*args):
            self.disconnect_reason = args[0] if args else None
            self.disconnected.set()

    def connect(self):
        self.sio.connect(
            self.url,
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )

    def seen(self, event=None, after=0.0):
        with self.lock:
            return [(t, e, d) for (t, e, d) in self.events if t >= after and (event is None or e == event)]

    def call(self, event, data, timeout=10):
        try:
            return self.sio.call(event, data, timeout=timeout)
        except socketio.exceptions.TimeoutError:
            raise StepFailed(f"no ack for {event} within {timeout} s") from None

    def close(self):
        try:
            if self.sio.connected:
                self.sio.disconnect()
        except Exception:  # noqa: BLE001 - best effort at the end
            pass


# ----------------------------------------------------------------- browser


def start_browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,800",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--password-store=basic",
        "--lang=en-US",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    try:
        driver = webdriver.Chrome(service=service, options=opts)
    except WebDriverException as e:
        raise StepFailed(
            f"cannot start Chromium through chromedriver ({(e.msg or str(e)).strip()}); "
            "install them with `apt-get install -y chromium chromium-driver`"
        ) from None
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    # The viewport itself 1280×800 (the window size includes no toolbar
    # headless, but make sure).
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
        )
    except WebDriverException:
        pass
    return driver


class Console:
    """Browser console messages, collected per page."""

    def __init__(self, driver):
        self.driver = driver
        self.by_page = {}

    def collect(self, page):
        try:
            entries = self.driver.get_log("browser")
        except WebDriverException:
            entries = []
        self.by_page.setdefault(page, []).extend(entries)
        return entries

    def problems(self, page):
        return [e for e in self.by_page.get(page, []) if e.get("level") in ("SEVERE", "WARNING")]


def css_str(value):
    """A CSS string literal for an attribute selector."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def click(driver, element):
    driver.execute_script("arguments[0].scrollIntoView({block: 'nearest'});", element)
    element.click()


def click_css(driver, css, what, timeout=6):
    """Clicks the first element matching `css`, again if the page redrew it meanwhile."""

    def attempt():
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        click(driver, found[0])
        return True

    wait_for(what, attempt, timeout)


def show_tab(driver, name):
    tab = driver.find_element(By.ID, "tab-" + name)
    click(driver, tab)
    wait_for(
        f"the {name} tab to be shown",
        lambda: tab.get_attribute("aria-selected") == "true"
        and driver.find_element(By.ID, "panel-" + name).is_displayed(),
        5,
    )


def element_data(driver, css):
    """The data-* attributes of the first element matching `css`, read at once (None if absent)."""
    return driver.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? Object.assign({}, el.dataset) : null;", css
    )


def row_cells(driver, css):
    """The cell texts of the first table row matching `css`, read at once (None if absent)."""
    return driver.execute_script(
        "const tr = document.querySelector(arguments[0]);"
        "return tr ? [...tr.cells].map((td) => td.innerText.trim()) : null;",
        css,
    )


def select_chat(driver, chat_id):
    """Picks a chat in the Chats view (the list may be redrawn meanwhile)."""
    css = f"#chat-list .chat-item[data-chat-id={css_str(chat_id)}]"

    def picked():
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        if found[0].get_attribute("aria-pressed") == "true":
            return True
        click(driver, found[0])
        return False

    wait_for(f"chat {chat_id} to be listed and selected in the Chats view", picked, 10, 0.2)


# ------------------------------------------------------------------- steps


def delta_gaps(deltas):
    """Positions (1-based, in arrival order) where content is not previous + contentDelta."""
    gaps = []
    text = ""
    for i, d in enumerate(deltas, 1):
        piece = d.get("contentDelta") or ""
        if d.get("content") != text + piece:
            gaps.append(i)
        text = d.get("content") or ""
    return gaps


def stream_of(client, chat_id, after, timeout):
    """The first stream id the client sees in `chat_id` after `after`."""

    def first():
        for _, _, d in client.seen("message:delta", after):
            if isinstance(d, dict) and d.get("chatId") == chat_id and d.get("streamId"):
                return d["streamId"]
        return None

    return wait_for(f"a message:delta in chat {chat_id} at the client", first, timeout, 0.05)


def deltas_of(client, stream_id):
    return [d for _, _, d in client.seen("message:delta") if isinstance(d, dict) and d.get("streamId") == stream_id]


def done_of(client, stream_id):
    for _, _, d in client.seen("message:done"):
        if isinstance(d, dict) and (d.get("streamId") == stream_id or d.get("id") == stream_id):
            return d
    return None


def run(args, state):
    mock = Mock(args.url)
    base = mock.url

    # Setup: the world, from the control plane and the REST API.
    CURRENT["step"] = "setup"
    profile = mock.request("GET", "/__admin/profile").get("data") or {}
    users = [u for u in profile.get("users", []) if u.get("token")]
    if not users:
        raise StepFailed("GET /__admin/profile lists no user with a token")
    user = users[0]
    chats = mock.request("GET", "/api/chats", token=user["token"]).get("data") or []
    welcome = next((c for c in chats if "welcome" in (c.get("title") or "").lower()), chats[0] if chats else None)
    if not welcome:
        raise StepFailed(f"{user.get('name')} is in no chat: the check needs the welcome chat of the default world")
    chat_id = welcome["id"]
    log(f"setup: user {user.get('name')} ({user['id']}), chat {welcome.get('title')!r} ({chat_id})")

    driver = state["driver"] = start_browser()
    console = state["console"] = Console(driver)

    # 1. The page renders.
    CURRENT["step"] = "1 (open /__admin/ui)"
    for path in ("/__admin/ui", "/__admin/ui/app.js", "/__admin/ui/style.css"):
        status, kind = mock.page(path)
        if status != 200:
            raise StepFailed(f"GET {path} answered {status}: this mock serves no inspector page (an older build?)")
        want = {"/__admin/ui": "text/html", "/__admin/ui/app.js": "javascript", "/__admin/ui/style.css": "text/css"}[path]
        if want not in kind:
            raise StepFailed(f"GET {path} is served as {kind!r}, expected {want}")
    try:
        driver.get(base + "/__admin/ui")
    except WebDriverException as e:
        raise StepFailed(f"cannot open {base}/__admin/ui: {e.msg}") from None
    heading = wait_for(
        "the heading 'proteus-mock inspector'",
        lambda: (lambda el: el if "proteus-mock inspector" in el.text else None)(driver.find_element(By.ID, "app-title")),
        10,
    )
    wait_for(
        "the page to load the profile (header shows the server)",
        lambda: "connecting" not in driver.find_element(By.ID, "server-info").text,
        10,
    )
    console.collect("inspector")
    log(f"step 1 ok: {heading.text!r} rendered, {driver.find_element(By.ID, 'server-info').text}")

    # 2. A python-socketio client appears in Connections under its socket id.
    CURRENT["step"] = "2 (client listed in Connections)"
    client = state["client"] = Client(base, user["token"])
    try:
        client.connect()
    except Exception as e:  # noqa: BLE001 - socketio raises several kinds
        raise StepFailed(f"the socket.io client cannot connect to {base}: {e}") from None
    wait_for("the client's `success` event", lambda: client.seen("success"), 10)
    ack = client.call("chat:join", {"chatId": chat_id})
    if not (isinstance(ack, dict) and "data" in ack):
        raise StepFailed(f"chat:join {chat_id} was not acknowledged with data: {ack!r}")
    sid = client.sio.get_sid() or client.sio.sid
    if not sid:
        raise StepFailed("python-socketio exposes no socket id (sio.sid)")
    show_tab(driver, "connections")
    row_css = f"#conn-body tr[data-sid={css_str(sid)}]"
    cells = wait_for(f"a Connections row for socket {sid}", lambda: row_cells(driver, row_css), 10)
    if cells[0] != sid:
        raise StepFailed(f"the row shows socket id {cells[0]!r}, the client's sio.sid is {sid!r}")
    if cells[1] != "socket.io":
        raise StepFailed(f"the row's protocol is {cells[1]!r}, expected socket.io")

    def entity_and_room():
        c = row_cells(driver, row_css)
        return c if c and user.get("name", "") in c[3] and (chat_id[-6:] in c[4] or (welcome.get("title") or "\0") in c[4]) else None

    cells = wait_for(f"the row to show entity {user.get('name')} and room {chat_id}", entity_and_room, 6)
    console.collect("inspector")
    log(f"step 2 ok: socket {sid} listed ({cells[2]}, {cells[3]}, rooms {cells[4]})")

    # 3. A streamed reply grows in the Chats view, then finishes.
    CURRENT["step"] = "3 (streamed reply grows in Chats)"
    show_tab(driver, "chats")
    select_chat(driver, chat_id)
    sent_at = time.monotonic()
    ack = client.call(
        "message:send",
        {
            "chatId": chat_id,
            "content": "inspector check: please stream",
            "streamResponse": True,
            "state": {"mock": {"chunks": 20, "chunkDelayMs": STREAM_DELAY_MS}},
        },
    )
    if not (isinstance(ack, dict) and "data" in ack):
        raise StepFailed(f"message:send was not acknowledged with data: {ack!r}")
    stream_id = stream_of(client, chat_id, sent_at, 10)
    stream_css = f"#streams li[data-stream-id={css_str(stream_id)}]"
    counts, lengths, final = [], [], None
    end = time.monotonic() + 20
    while time.monotonic() < end:
        data = element_data(driver, stream_css)
        if data:
            st = data.get("state")
            n = int(data.get("deltas") or 0)
            chars = int(data.get("chars") or 0)
            if st == "done":
                final = (n, chars)
                break
            if not counts or counts[-1] != n:
                counts.append(n)
            if not lengths or lengths[-1] != chars:
                lengths.append(chars)
        time.sleep(0.05)
    if final is None:
        raise StepFailed(
            f"stream {stream_id} did not show as done in the Streams list within 20 s "
            f"(delta counts seen: {counts or 'none: no row for it'})"
        )
    increases = sum(1 for a, b in zip(counts, counts[1:]) if b > a)
    if increases < 2:
        raise StepFailed(
            f"the page's delta count for stream {stream_id} went up {increases} time(s) before it finished "
            f"(values seen while streaming: {counts}); expected at least twice"
        )
    if not any(b > a for a, b in zip(lengths, lengths[1:])):
        raise StepFailed(
            f"the text of stream {stream_id} did not grow on the page (lengths seen: {lengths}); "
            "do journal `out` entries carry detail.payload?"
        )
    wait_for(f"message:done of stream {stream_id} at the client", lambda: done_of(client, stream_id), 10)
    first_deltas = deltas_of(client, stream_id)
    if delta_gaps(first_deltas):
        raise StepFailed(f"without a fault the client's stream already had gaps at {delta_gaps(first_deltas)}")
    if final[0] != len(first_deltas):
        raise StepFailed(f"the page says {final[0]} deltas for stream {stream_id}, the client got {len(first_deltas)}")
    console.collect("inspector")
    log(f"step 3 ok: stream {stream_id} grew on the page (delta counts {counts}, text lengths {lengths}) and ended with {final[0]} deltas")

    # 4. drop-delta:2 from the Faults form hits the next stream.
    CURRENT["step"] = "4 (fault drop-delta:2 from the Faults form)"
    show_tab(driver, "faults")
    spec = driver.find_element(By.ID, "fault-spec")
    spec.clear()
    spec.send_keys("drop-delta:2")
    chat_select = Select(driver.find_element(By.ID, "fault-chat"))
    wait_for(
        "the welcome chat in the fault form's chat list",
        lambda: any(o.get_attribute("value") == chat_id for o in chat_select.options),
        5,
    )
    chat_select.select_by_value(chat_id)
    click(driver, driver.find_element(By.ID, "fault-add"))
    fault_css = '#faults-body tr[data-fault-spec="drop-delta:2"]'
    wait_for("drop-delta:2 listed as an active fault", lambda: element_data(driver, fault_css), 6)
    fault_id = element_data(driver, fault_css)["faultId"]
    scope_text = row_cells(driver, fault_css)[2]
    if chat_id[-6:] not in scope_text and (welcome.get("title") or "\0") not in scope_text:
        raise StepFailed(f"the active fault's scope reads {scope_text!r}, expected the welcome chat")
    active = mock.request("GET", "/__admin/faults").get("data") or []
    if not any(str(f.get("id")) == fault_id and f.get("spec") == "drop-delta:2" for f in active):
        raise StepFailed(f"GET /__admin/faults does not list fault {fault_id} drop-delta:2: {active}")
    chunks = 10
    sent_at = time.monotonic()
    ack = client.call(
        "message:send",
        {
            "chatId": chat_id,
            "content": "inspector check: stream with a fault",
            "streamResponse": True,
            "state": {"mock": {"chunks": chunks, "chunkDelayMs": 30}},
        },
    )
    if not (isinstance(ack, dict) and "data" in ack):
        raise StepFailed(f"message:send was not acknowledged with data: {ack!r}")
    faulty = stream_of(client, chat_id, sent_at, 10)
    wait_for(f"message:done of stream {faulty} at the client", lambda: done_of(client, faulty), 10)
    got = deltas_of(client, faulty)
    gaps = delta_gaps(got)
    if len(got) != chunks - 1 or gaps != [2]:
        raise StepFailed(
            f"with drop-delta:2 the client got {len(got)} deltas of {chunks} with gaps at {gaps}; "
            "expected delta 2 missing (9 deltas, the gap before the second one received)"
        )
    wait_for(
        "the active fault's applied count to reach 1 on the page",
        lambda: int((element_data(driver, fault_css) or {}).get("applied") or 0) >= 1,
        8,
    )
    click_css(driver, fault_css + " button.remove-fault", "the fault's Remove button")
    wait_for("the fault to leave the active list", lambda: not driver.find_elements(By.CSS_SELECTOR, fault_css), 6)
    console.collect("inspector")
    log(f"step 4 ok: fault {fault_id} (scope {scope_text}) listed, stream {faulty} reached the client with delta 2 missing ({len(got)} of {chunks}); fault removed")

    # 5. The composer posts into the chat; the client gets the message.
    CURRENT["step"] = "5 (composer message reaches the client)"
    show_tab(driver, "chats")
    select_chat(driver, chat_id)
    user_select = Select(driver.find_element(By.ID, "composer-user"))
    wait_for("the world's users in the composer", lambda: any(o.get_attribute("value") == user["id"] for o in user_select.options), 5)
    user_select.select_by_value(user["id"])
    text = f"Hello from the inspector composer {uuid.uuid4().hex[:8]}"
    box = driver.find_element(By.ID, "composer-text")
    box.clear()
    box.send_keys(text)
    sent_at = time.monotonic()
    click(driver, driver.find_element(By.ID, "composer-send"))

    def delivered():
        return [d for _, _, d in client.seen("message", sent_at) if isinstance(d, dict) and d.get("content") == text]

    got = wait_for("the client's `message` event with the composer's text", delivered, 10)[0]
    if got.get("senderId") != user["id"]:
        raise StepFailed(f"the message arrived from {got.get('senderId')}, expected {user['id']} ({user.get('name')})")
    status = driver.find_element(By.ID, "composer-status").text
    if not status.startswith("Sent"):
        raise StepFailed(f"the composer says {status!r} after sending")
    wait_for(
        "the posted message in the page's conversation",
        lambda: any(text in el.text for el in driver.find_elements(By.CSS_SELECTOR, "#conversation .msg-text")),
        8,
    )
    time.sleep(1.5)  # the agent's reply lands too: a fuller picture
    state["screenshot"] = driver.get_screenshot_as_png()
    console.collect("inspector")
    log(f"step 5 ok: the client got {text!r} from {user.get('name')}")

    # 6. Disconnect from the page.
    CURRENT["step"] = "6 (Disconnect button)"
    show_tab(driver, "connections")
    click_css(driver, row_css + " button.disconnect", f"the Disconnect button of socket {sid}")
    if not client.disconnected.wait(10):
        raise StepFailed(f"the client was not disconnected within 10 s of clicking Disconnect for {sid}")
    wait_for(f"the row of socket {sid} to go", lambda: not driver.find_elements(By.CSS_SELECTOR, row_css), 6)
    console.collect("inspector")
    log(f"step 6 ok: the client saw a disconnect ({client.disconnect_reason or 'no reason given'})")

    # 8 (first half). The inspector's console, before leaving the page.
    CURRENT["step"] = "8 (inspector console)"
    time.sleep(0.6)  # one more journal poll
    console.collect("inspector")
    problems = console.problems("inspector")
    if problems:
        lines = "; ".join(f"{p['level']}: {p['message']}" for p in problems[:10])
        raise StepFailed(f"the inspector page logged {len(problems)} error(s)/warning(s): {lines}")

    # 7. The HTML reports of the other tools.
    for path in args.report_html:
        CURRENT["step"] = f"7 (report {path})"
        check_report(driver, console, path)

    CURRENT["step"] = "8 (screenshot)"
    log("step 8 ok: no console error or warning on the inspector page")


CHART_PROBE = r"""
const out = [];
const blank = (c) => {
  const b = document.createElement('canvas');
  b.width = c.width; b.height = c.height;
  return b.toDataURL();
};
document.querySelectorAll('canvas').forEach((c, i) => {
  const r = {kind: 'canvas', index: i, id: c.id || '', width: c.width, height: c.height, drawn: false, error: null};
  try {
    if (!c.width || !c.height) {
      r.error = 'zero-sized canvas';
    } else {
      const ctx = c.getContext('2d');
      if (ctx) {
        const data = ctx.getImageData(0, 0, c.width, c.height).data;
        for (let j = 3; j < data.length; j += 4) { if (data[j] !== 0) { r.drawn = true; break; } }
      } else {
        r.drawn = c.toDataURL() !== blank(c);
      }
    }
  } catch (e) { r.error = String(e); }
  out.push(r);
});
const SHAPES = 'path, rect, polyline, polygon, line, circle, ellipse';
const byAttributes = (el) => {
  const n = (a) => parseFloat(el.getAttribute(a) || '0') || 0;
  switch (el.tagName.toLowerCase()) {
    case 'path': return /[0-9]/.test(el.getAttribute('d') || '') && (el.getAttribute('d') || '').trim().length > 3;
    case 'rect': return n('width') > 0 && n('height') > 0;
    case 'polyline': case 'polygon': return (el.getAttribute('points') || '').trim().split(/[\s,]+/).length >= 4;
    case 'line': return n('x1') !== n('x2') || n('y1') !== n('y2');
    case 'circle': return n('r') > 0;
    case 'ellipse': return n('rx') > 0 && n('ry') > 0;
  }
  return false;
};
document.querySelectorAll('svg').forEach((s, i) => {
  const shapes = [...s.querySelectorAll(SHAPES)];
  const rendered = s.getClientRects().length > 0;
  let sized = 0;
  for (const el of shapes) {
    let ok = false;
    if (rendered) {
      try { const b = el.getBBox(); ok = b.width > 0 || b.height > 0; } catch (e) { ok = false; }
    }
    if (!ok && !rendered) ok = byAttributes(el);
    if (ok) sized++;
  }
  out.push({kind: 'svg', index: i, id: s.id || '', label: s.getAttribute('aria-label') || '', shapes: shapes.length, sized, rendered});
});
return out;
"""


def check_report(driver, console, path):
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise StepFailed(f"no such report file: {full}")
    console.collect("before-report")  # whatever came before is not the report's
    try:
        driver.get("file://" + full)
    except WebDriverException as e:
        raise StepFailed(f"cannot open file://{full}: {e.msg}") from None
    wait_for("the report to finish loading", lambda: driver.execute_script("return document.readyState") == "complete", 15)
    time.sleep(0.8)  # charts drawn after load (timers, animation frames)
    page = "report:" + full
    console.collect(page)  # before the probe, whose pixel reads are not the report's doing
    charts = driver.execute_script(CHART_PROBE)
    console.collect("probe:" + full)
    problems = console.problems(page)
    if problems:
        lines = "; ".join(f"{p['level']}: {p['message']}" for p in problems[:10])
        raise StepFailed(f"{path} logged {len(problems)} console error(s)/warning(s): {lines}")
    empty = []
    for c in charts:
        if c["kind"] == "canvas" and not c["drawn"]:
            empty.append(f"canvas #{c['index']}{' id=' + c['id'] if c['id'] else ''} ({c['width']}×{c['height']}){': ' + c['error'] if c['error'] else ' has no drawn pixel'}")
        if c["kind"] == "svg" and c["sized"] == 0:
            name = c["id"] or c["label"]
            empty.append(f"svg #{c['index']}{' ' + name if name else ''} has no shape with a size ({c['shapes']} path/rect/polyline/… element(s))")
    if empty:
        raise StepFailed(f"{path}: {len(empty)} empty chart(s) of {len(charts)}: " + "; ".join(empty[:10]))
    kinds = {}
    for c in charts:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no chart"
    log(f"step 7 ok: {path}: no console error or warning, {what}, all drawn")


def main():
    parser = argparse.ArgumentParser(description="End-to-end check of proteus-mock's inspector page.")
    parser.add_argument("--url", required=True, help="the mock's base URL, e.g. http://127.0.0.1:4620")
    parser.add_argument("--screenshot", required=True, help="where to save a PNG of the page (the Chats view after step 5)")
    parser.add_argument("--report-html", action="append", default=[], metavar="FILE", help="an HTML report to check for console errors and empty charts (repeatable)")
    args = parser.parse_args()

    state = {"driver": None, "client": None, "console": None, "screenshot": None}
    finished = threading.Event()

    def fail(message):
        if not CURRENT["timed_out"]:  # the watchdog already said why
            print(f"FAIL step {CURRENT['step']}: {message}", file=sys.stderr, flush=True)
            save_screenshot()

    def save_screenshot():
        png = state.get("screenshot")
        if png is None and state.get("driver") is not None:
            try:
                png = state["driver"].get_screenshot_as_png()
            except Exception:  # noqa: BLE001 - best effort
                png = None
        if png is not None:
            try:
                os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
                with open(args.screenshot, "wb") as f:
                    f.write(png)
                return True
            except OSError as e:
                print(f"cannot write the screenshot to {args.screenshot}: {e}", file=sys.stderr)
        return False

    def cleanup():
        if state.get("client") is not None:
            state["client"].close()
        if state.get("driver") is not None:
            try:
                state["driver"].quit()
            except Exception:  # noqa: BLE001
                pass

    def watchdog():
        if finished.wait(DEADLINE_S):
            return
        CURRENT["timed_out"] = True
        print(f"FAIL step {CURRENT['step']}: the check did not finish within {DEADLINE_S} s", file=sys.stderr, flush=True)
        t = threading.Thread(target=lambda: (save_screenshot(), cleanup()), daemon=True)
        t.start()
        t.join(8)
        os._exit(1)

    threading.Thread(target=watchdog, daemon=True).start()
    code = 0
    try:
        run(args, state)
        if state.get("screenshot") is None:
            raise StepFailed("no screenshot was taken")
        if not save_screenshot():
            raise StepFailed(f"cannot save the screenshot to {args.screenshot}")
        log(f"screenshot saved to {args.screenshot}")
        print(f"inspector check passed in {time.monotonic() - STARTED:.1f} s", flush=True)
    except StepFailed as e:
        fail(str(e))
        code = 1
    except WebDriverException as e:
        fail(f"browser error: {(e.msg or str(e)).strip()}")
        code = 1
    except Exception as e:  # noqa: BLE001 - any other failure is a failed check, with its step
        fail(f"{type(e).__name__}: {e}")
        code = 1
    finally:
        finished.set()
        cleanup()
    sys.exit(code)


if __name__ == "__main__":
    main()
