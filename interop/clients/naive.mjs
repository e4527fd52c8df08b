// A deliberately naive client-conformance adapter (docs/CLIENTS.md): the
// shortcuts real clients take. It builds a reply by concatenating deltas and
// calls it complete when they stop coming (it ignores message:done), takes
// the first page of history for all of it, reads an error envelope as an
// empty result, retries a refused connection in a loop, sends without ack
// callbacks, runs concurrent replies together and never rejoins a room. The client
// scenarios must catch each shortcut: conformance/tests/clients.rs lists
// which scenario fails for which.
import { io } from "socket.io-client";

const env = (k) => process.env[k] ?? "";
const URL_ = env("PROTEUS_URL"), TOKEN = env("PROTEUS_TOKEN"), CHAT = env("PROTEUS_CHAT_ID");
const say = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function connect() {
  // Reconnects on its own, whatever the server said.
  const socket = io(URL_, { auth: { token: TOKEN }, transports: ["websocket"] });
  socket.on("disconnect", () => setTimeout(() => socket.connect(), 50));
  return new Promise((resolve) => socket.once("success", () => resolve(socket)));
}

const tasks = {
  connect: async () => {
    const socket = await Promise.race([connect(), sleep(1500)]);
    if (socket) say({ event: "connected" });
    else say({ event: "error", message: "could not connect" });
  },
  send: async () => {
    const socket = await connect();
    socket.emit("chat:join", { chatId: CHAT });
    const ack = await socket.emitWithAck("message:send", { chatId: CHAT, content: env("PROTEUS_CONTENT") });
    say({ event: "sent", messageId: ack?.data?.message?.id ?? "unknown" });
  },
  stream: async () => {
    const socket = await connect();
    await socket.emitWithAck("chat:join", { chatId: CHAT });
    let text = "", last = Date.now(), started = false;
    socket.on("message:delta", (d) => {
      text += d.contentDelta;
      last = Date.now();
      started = true;
    });
    socket.emit("message:send", { chatId: CHAT, content: env("PROTEUS_CONTENT"), streamResponse: true, state: JSON.parse(env("PROTEUS_STATE") || "{}") });
    while (!started || Date.now() - last < 300) await sleep(20);
    say({ event: "final", content: text });
  },
  "two-streams": async () => {
    const socket = await connect();
    await socket.emitWithAck("chat:join", { chatId: CHAT });
    // One text for the chat: the deltas of both replies run together.
    let text = "", last = Date.now(), started = false;
    socket.on("message:delta", (d) => {
      text += d.contentDelta;
      last = Date.now();
      started = true;
    });
    const state = JSON.parse(env("PROTEUS_STATE") || "{}");
    for (const content of [env("PROTEUS_CONTENT"), env("PROTEUS_CONTENT_2")])
      socket.emit("message:send", { chatId: CHAT, content, streamResponse: true, state });
    while (!started || Date.now() - last < 300) await sleep(20);
    say({ event: "final", content: text });
  },
  rejoin: async () => {
    // Joins once; after a reconnect the server has forgotten the room.
    const socket = await connect();
    socket.emit("chat:join", { chatId: CHAT });
    say({ event: "connected" });
    socket.on("message", (m) => say({ event: "received", messageId: m.id }));
    await sleep(Number(env("PROTEUS_TIMEOUT_MS") || 2000));
  },
  history: async () => {
    const res = await fetch(`${URL_}/api/chats/${CHAT}/messages`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = await res.json().catch(() => ({}));
    say({ event: "history", ids: (body.data ?? []).map((m) => m.id) });
  },
};

tasks[env("PROTEUS_TASK")]().finally(() => process.exit(0));
