// A careful client-conformance adapter on the official npm socket.io-client
// (docs/CLIENTS.md): does the task in PROTEUS_TASK and prints what it got as
// JSON lines. It presents a reply only on message:done, with done's
// content; it surfaces every error with the server's message; it pages
// history by cursor until the server says there is no more.
import { io } from "socket.io-client";

const env = (k) => process.env[k] ?? "";
const URL_ = env("PROTEUS_URL"), TOKEN = env("PROTEUS_TOKEN"), CHAT = env("PROTEUS_CHAT_ID");
const TIMEOUT = Number(env("PROTEUS_TIMEOUT_MS") || 2000);
const say = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const wait = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(Object.assign(new Error(what), { timeout: true })), ms))]);

// Connects; resolves on `success`, rejects with the server's `error` message.
function connect() {
  const socket = io(URL_, { auth: { token: TOKEN }, transports: ["websocket"], reconnection: false });
  const ready = new Promise((resolve, reject) => {
    socket.once("success", () => resolve(socket));
    socket.once("error", (e) => reject(new Error(e?.message || "the server refused the connection")));
    socket.once("connect_error", (e) => reject(new Error(e?.message || "cannot connect")));
  });
  return wait(ready, 5000, "no answer to the connection").catch((e) => {
    socket.close();
    throw e;
  });
}

// An acked emit: the ack's data, or the error ack's message as an Error.
async function request(socket, event, payload) {
  const ack = await wait(socket.emitWithAck(event, payload), 5000, `no ack for ${event}`);
  if (ack?.error) throw new Error(ack.error.message || `${event} failed`);
  return ack?.data;
}

async function send(stream) {
  const socket = await connect();
  try {
    await request(socket, "chat:join", { chatId: CHAT });
    const body = { chatId: CHAT, content: env("PROTEUS_CONTENT") };
    if (stream) Object.assign(body, { streamResponse: true, state: JSON.parse(env("PROTEUS_STATE") || "{}") });
    // Listen before sending: the reply may start before the ack arrives.
    const done = new Promise((resolve) => socket.on("message:done", resolve));
    const sent = await request(socket, "message:send", body);
    if (!stream) return say({ event: "sent", messageId: sent.message.id });
    try {
      const final = await wait(done, TIMEOUT, "no message:done");
      say({ event: "final", content: final.content, messageId: final.id });
    } catch (e) {
      if (e.timeout) say({ event: "timeout" });
      else throw e;
    }
  } finally {
    socket.close();
  }
}

async function history() {
  const ids = [];
  let cursor = null, total = null;
  for (let pages = 0; pages < 100; pages++) {
    const q = new URLSearchParams({ "@limit": "20" });
    if (cursor) q.set("@cursor", cursor);
    const res = await fetch(`${URL_}/api/chats/${CHAT}/messages?${q}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = await res.json().catch(() => null);
    if (!res.ok || !body?.ok) {
      const error = new Error(body?.error?.message || `HTTP ${res.status}`);
      error.status = res.status;
      throw error;
    }
    const page = body.data;
    total ??= body.meta?.total ?? null;
    if (page.length === 0) break;
    ids.push(...page.map((m) => m.id));
    cursor = page[page.length - 1].id;
  }
  // Pages that do not add up to the total are a broken history, not a short one.
  if (total !== null && total !== ids.length) throw new Error(`history incomplete: ${ids.length} messages of the ${total} the server counts`);
  // Oldest first, as the API lists (PROTOCOL.md R9).
  say({ event: "history", ids });
}

// Two replies at once: each done is matched to its message by respondedToId.
async function twoStreams() {
  const socket = await connect();
  try {
    await request(socket, "chat:join", { chatId: CHAT });
    const state = JSON.parse(env("PROTEUS_STATE") || "{}");
    const dones = new Map();
    let arrived = () => {};
    socket.on("message:done", (m) => {
      dones.set(m.respondedToId, m);
      arrived();
    });
    const sends = [env("PROTEUS_CONTENT"), env("PROTEUS_CONTENT_2")].map((content) =>
      request(socket, "message:send", { chatId: CHAT, content, streamResponse: true, state }));
    const ids = (await Promise.all(sends)).map((sent) => sent.message.id);
    const both = new Promise((resolve) => {
      arrived = () => ids.every((id) => dones.has(id)) && resolve();
      arrived();
    });
    try {
      await wait(both, TIMEOUT, "no message:done");
    } catch (e) {
      if (!e.timeout) throw e;
    }
    for (const id of ids) {
      const done = dones.get(id);
      say(done ? { event: "final", content: done.content, messageId: done.id } : { event: "timeout" });
    }
  } finally {
    socket.close();
  }
}

// Stays in the chat through a server restart: socket.io reconnects by
// itself, but rooms live on the server, so every `success` (the first and
// each after a reconnect) joins the chat again.
async function rejoin() {
  const socket = io(URL_, { auth: { token: TOKEN }, transports: ["websocket"] });
  let first = true;
  socket.on("success", () => {
    request(socket, "chat:join", { chatId: CHAT })
      .then(() => first && say({ event: "connected" }))
      .catch((e) => say({ event: "error", message: String(e.message || e) }))
      .finally(() => (first = false));
  });
  const got = new Promise((resolve) =>
    socket.on("message", (m) => {
      if (m.chatId !== CHAT) return;
      say({ event: "received", messageId: m.id, content: m.content });
      if (m.content === env("PROTEUS_CONTENT")) resolve();
    }));
  try {
    await wait(got, TIMEOUT, "the message did not arrive");
  } catch (e) {
    if (e.timeout) say({ event: "timeout" });
    else throw e;
  } finally {
    socket.close();
  }
}

const tasks = {
  connect: async () => {
    (await connect()).close();
    say({ event: "connected" });
  },
  send: () => send(false),
  stream: () => send(true),
  history,
  "two-streams": twoStreams,
  rejoin,
};

const task = tasks[env("PROTEUS_TASK")];
if (!task) {
  say({ event: "error", message: `unknown task ${env("PROTEUS_TASK")}` });
  process.exit(2);
}
task()
  .catch((e) => say({ event: "error", message: String(e.message || e), ...(e.status ? { status: e.status } : {}) }))
  .finally(() => process.exit(0));
