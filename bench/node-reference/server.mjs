// The benchmark reference: a socket.io 4.8 server emitting the same event
// shapes as proteus-mock for the one workload it is compared on (fan-out of
// streamed replies). It is not a ProteusAI implementation: no REST, no
// persistence, any non-empty token is accepted.
//
//   node server.mjs [port]
//
// message:send acks {data: {message, chatId}}, emits the message to the room,
// then streams state.mock.chunks deltas (default 50) of the text
// state.mock.text (default 8 "x" per chunk), state.mock.chunkDelayMs apart
// (default 0: back to back), then message:done. For proteus-load it also
// answers GET /__admin/profile and POST /api/chats (a fresh chat id).
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 4100);
const TOKEN = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
const http = createServer((req, res) => {
  // socket.io handles its own path; everything else is the little REST surface.
  if (req.url.startsWith("/socket.io/")) return;
  const reply = (status, body) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(body)); };
  req.resume();
  req.on("end", () => {
    if (req.method === "GET" && req.url === "/__admin/profile") {
      return reply(200, { ok: true, data: { users: [{ id: "6466ae1b03fab9ddd1d67c40", token: TOKEN }],
        agents: { streaming: "6819a0e484df0fc342cea506" }, capabilities: { streamOverride: "state.mock" } } });
    }
    if (req.method === "POST" && req.url === "/api/chats") return reply(201, { ok: true, data: { id: id() } });
    reply(404, { ok: false, error: { message: "not part of the benchmark reference" } });
  });
});
const io = new Server(http, { maxHttpBufferSize: 1e6 });
let next = 1;
const id = () => (0x69b00000).toString(16) + (next++).toString(16).padStart(16, "0");
const now = () => new Date().toISOString();

function message(chatId, content, extra = {}) {
  const at = now();
  return {
    id: id(), content, contentDelta: null, chatId, chatKey: null, instructions: [], isStreaming: false,
    notes: [], respondedToId: null, responseUrl: null, senderId: "6466ae1b03fab9ddd1d67c40", state: {},
    streamId: null, streamResponse: false, type: "TEXT", createdAt: at, updatedAt: at, attachments: [], citations: [],
    ...extra,
  };
}

io.on("connection", (socket) => {
  const token = socket.handshake.auth?.token;
  if (typeof token !== "string" || token.length === 0) {
    socket.emit("error", { message: "Missing token" });
    socket.disconnect(true);
    return;
  }
  socket.emit("success", { entity: { id: "6466ae1b03fab9ddd1d67c40", type: "USER", name: "Ada Lovelace" } });
  socket.on("chat:join", ({ chatId } = {}, ack) => {
    socket.join(chatId);
    ack?.({ data: { chatId } });
  });
  socket.on("message:send", (body = {}, ack) => {
    const chatId = body.chatId;
    socket.join(chatId);
    const sent = message(chatId, String(body.content ?? ""), { streamResponse: !!body.streamResponse, state: body.state ?? {} });
    ack?.({ data: { message: sent, chatId } });
    io.to(chatId).emit("message", sent);
    const mock = body.state?.mock ?? {};
    const chunks = mock.chunks ?? 50;
    const text = mock.text ?? "x".repeat(chunks * 8);
    if (!body.streamResponse) return;
    const size = Math.ceil(text.length / chunks);
    const streamId = id();
    const reply = message(chatId, "", { isStreaming: true, streamId, respondedToId: sent.id, senderId: "6819a0e484df0fc342cea506" });
    const delay = Number(mock.chunkDelayMs ?? 0);
    let content = "";
    const delta = (i) => {
      const contentDelta = text.slice(i * size, (i + 1) * size);
      content += contentDelta;
      const m = { ...reply, content, contentDelta };
      io.to(chatId).emit("message:delta", { chatId, streamId, messageId: reply.id, contentDelta, content, message: m });
    };
    const done = () => io.to(chatId).emit("message:done", { ...reply, content, contentDelta: null, isStreaming: false });
    if (delay <= 0) {
      for (let i = 0; i < chunks; i++) delta(i);
      return done();
    }
    // Paced like the mock: absolute deadlines from the start.
    const start = Date.now();
    let i = 0;
    const next = () => {
      delta(i++);
      if (i === chunks) return done();
      setTimeout(next, Math.max(0, start + i * delay - Date.now()));
    };
    setTimeout(next, 0);
  });
});

http.listen(port, "127.0.0.1", () => console.log(`node reference listening on http://127.0.0.1:${port}`));
