// A careful Thenvoi (Band) agent, as docs/CLIENTS.md asks of one, on the
// official npm `phoenix` client (which reconnects and rejoins by itself).
// Task `agent`: join chat_room:THENVOI_ROOM_ID as THENVOI_AGENT_ID and
// handle each message meant for this agent: claim it (/processing), do the
// work (one reply in the room, mentioning the sender), then /processed (or
// /failed when the work failed). Messages it sent, and messages that do not
// mention it, are left alone. Prints JSON lines: connected, handled, error,
// timeout.
import { Socket } from "phoenix";
import WebSocket from "ws";

const env = process.env;
const base = env.PROTEUS_URL;
const agentId = env.THENVOI_AGENT_ID;
const key = env.THENVOI_API_KEY;
const room = env.THENVOI_ROOM_ID;
const last = env.PROTEUS_CONTENT;
const timeoutMs = Number(env.PROTEUS_TIMEOUT_MS ?? 2000);
const lingerMs = Number(env.PROTEUS_LINGER_MS ?? 500);
const say = (line) => console.log(JSON.stringify(line));

async function api(method, path, body) {
  const r = await fetch(`${base}/api/v1/agent${path}`, {
    method,
    headers: { "content-type": "application/json", "x-api-key": key },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) {
    const e = new Error(`${method} ${path} answered ${r.status}: ${text}`);
    e.status = r.status;
    throw e;
  }
  return text ? JSON.parse(text) : null;
}

let finish;
const finished = new Promise((resolve) => (finish = resolve));
const deadline = setTimeout(() => {
  say({ event: "timeout" });
  finish();
}, timeoutMs);

async function handle(m) {
  const at = `/chats/${room}/messages/${m.id}`;
  try {
    await api("POST", `${at}/processing`);
    try {
      // The runner asks for work that fails with a `fail:` message.
      if (m.content.startsWith("fail:")) throw new Error("the work failed, as asked");
      await api("POST", `/chats/${room}/messages`, {
        message: { content: `handled: ${m.content}`, mentions: [{ id: m.sender_id }] },
      });
    } catch (e) {
      await api("POST", `${at}/failed`, { error: e.message });
      if (m.content === last) {
        clearTimeout(deadline);
        setTimeout(finish, lingerMs);
      }
      throw e;
    }
    await api("POST", `${at}/processed`);
    say({ event: "handled", messageId: m.id });
    if (m.content === last) {
      clearTimeout(deadline);
      setTimeout(finish, lingerMs);
    }
  } catch (e) {
    say({ event: "error", message: e.message, status: e.status });
  }
}

const socket = new Socket(base.replace(/^http/, "ws") + "/api/v1/socket", {
  transport: WebSocket,
  params: { api_key: key, agent_id: agentId },
});
socket.onError(() => {}); // the client reconnects by itself
socket.connect();
const channel = socket.channel(`chat_room:${room}`, {});
const seen = new Set();
let work = Promise.resolve();
channel.on("message_created", (m) => {
  if (m.sender_id === agentId) return; // never its own
  if (!(m.metadata?.mentions ?? []).some((x) => x.id === agentId)) return; // only its mentions
  if (seen.has(m.id)) return;
  seen.add(m.id);
  work = work.then(() => handle(m)); // one at a time, in order
});
channel
  .join()
  .receive("ok", () => say({ event: "connected" }))
  .receive("error", (r) => say({ event: "error", message: `join refused: ${JSON.stringify(r)}` }));

await finished;
socket.disconnect();
process.exit(0);
