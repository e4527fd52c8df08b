// A second, independent ProteusAI server, written from docs/PROTOCOL.md alone
// (no code shared with proteus-mock), so that proteus-conformance is shown to
// pass an implementation that is not the mock. Deliberately small.
//
//   node reference-server.mjs [port]     → prints one JSON line: {url, profile}
//
// Two users (A in the org, B outside it), a public streaming agent and an
// org-private agent. It has no control plane: the runner uses the profile it
// prints, like any third-party implementation would.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 0);
const ORG = "5f0000000000000000000001";
const hex = (n, len) => n.toString(16).padStart(len, "0");
let counter = 0x100;
const newId = () => "5f00" + hex(++counter, 20);
const now = () => new Date().toISOString();
const token = (seed) => `user-${hex(seed, 24)}.${hex(seed, 32)}.${hex(seed, 32)}.${hex(seed, 48)}`;

const users = [
  { id: "5f0000000000000000000a01", name: "Alice", token: token(0xa1), orgs: [ORG] },
  { id: "5f0000000000000000000b02", name: "Bob", token: token(0xb2), orgs: [] },
];
const revoked = token(0xdead);
const agents = new Map();
const mkAgent = (id, name, isPublic) => ({ id, name, canSendWelcomeMessage: false, createdAt: now(), description: null,
  goal: "Reference agent", image: null, isPublic, isTemplate: false, orgId: ORG, tags: [], updatedAt: now(), welcomeMessage: null });
agents.set("5f0000000000000000000c01", mkAgent("5f0000000000000000000c01", "Streamer", true));
agents.set("5f0000000000000000000c02", mkAgent("5f0000000000000000000c02", "Private", false));
const chats = new Map(); // id -> { chat, members: Set("TYPE:id"), messages: [] }
const keys = new Map(); // scope + key -> chat id

const HEX24 = /^[0-9a-f]{24}$/;
const TYPES = new Set(["AGENT", "USER", "APP_INTEGRATION"]);
const byToken = (t) => users.find((u) => u.token === t);
const visible = (u, a) => a.isPublic || u.orgs.includes(a.orgId);
const isMember = (u, rec) => rec.members.has(`USER:${u.id}`);

class Refusal extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function createChat(user, participants = [], key, title = null, state = null) {
  if (!Array.isArray(participants)) throw new Refusal(400, "participants must be an array of {id, type}");
  for (const p of participants) {
    if (!p || typeof p.id !== "string" || !HEX24.test(p.id) || !TYPES.has(p.type)) throw new Refusal(400, `invalid participant ${JSON.stringify(p)}`);
    if (p.type === "AGENT") {
      const a = agents.get(p.id);
      if (!a) throw new Refusal(404, `agent ${p.id} not found`);
      if (!visible(user, a)) throw new Refusal(403, `agent ${p.id} is not visible to you`);
    } else if (p.type === "USER" && !users.some((u) => u.id === p.id)) throw new Refusal(404, `user ${p.id} not found`);
  }
  const scope = (user.orgs[0] ?? user.id) + "/" + key;
  if (key != null && keys.has(scope)) return { chat: chats.get(keys.get(scope)).chat, created: false };
  const at = now();
  const chat = { id: newId(), key: key ?? null, orgId: user.orgs[0] ?? null, state, title, systemMessages: [], latestMessageId: null, createdAt: at, updatedAt: at };
  const members = new Set([`USER:${user.id}`, ...participants.map((p) => `${p.type}:${p.id}`)]);
  chats.set(chat.id, { chat, members, messages: [] });
  if (key != null) keys.set(scope, chat.id);
  return { chat, created: true };
}

function persist(chatId, senderId, body, extra = {}) {
  const rec = chats.get(chatId);
  const at = now();
  const m = { id: newId(), content: body.content, contentDelta: null, chatId, chatKey: rec.chat.key, instructions: [], isStreaming: false,
    notes: [], respondedToId: null, responseUrl: body.responseUrl ?? null, senderId, state: body.state ?? {}, streamId: null,
    streamResponse: !!body.streamResponse, type: body.type ?? "TEXT", createdAt: at, updatedAt: at, attachments: body.attachments ?? [],
    citations: [], ...extra };
  rec.messages.push(m);
  rec.chat.latestMessageId = m.id;
  return m;
}

function page(rec, query) {
  const get = (k) => query.get("@" + k);
  const int = (name, v) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new Refusal(400, `${name} must be an integer >= 1`);
    return Number(v);
  };
  const limit = get("limit") == null ? 20 : Math.min(100, int("@limit", get("limit")));
  let start, meta;
  if (get("cursor") != null) {
    const at = rec.messages.findIndex((m) => m.id === get("cursor"));
    if (at < 0) throw new Refusal(400, "@cursor is not a message of this chat");
    start = at + 1; meta = { cursor: get("cursor") };
  } else {
    const p = get("page") == null ? 1 : int("@page", get("page"));
    start = (p - 1) * limit; meta = { page: p };
  }
  const items = rec.messages.slice(start, start + limit);
  const hasMore = start + items.length < rec.messages.length;
  return { items, meta: { ...meta, limit, total: rec.messages.length, hasMore, nextCursor: hasMore ? items.at(-1).id : null } };
}

// ---- REST ----
const send = (res, status, body) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(body)); };
const ok = (res, status, data, meta) => send(res, status, meta ? { ok: true, data, meta } : { ok: true, data });
const routes = [
  ["/api/chats", ["POST"]], [/^\/api\/chats\/([^/]+)$/, ["GET", "PUT"]], [/^\/api\/chats\/([^/]+)\/messages$/, ["GET"]],
  ["/api/agents", ["POST"]], [/^\/api\/agents\/([^/]+)$/, ["GET", "PUT", "DELETE"]],
  ["/api/messages", ["POST"]], ["/api/repositories", ["POST"]],
  [/^\/api\/chats\/([^/]+)\/participants$/, ["POST"]], [/^\/api\/chats\/([^/]+)\/repositories$/, ["POST"]],
];
const repositories = new Map();
// R19: lifecycle events go to the room under their own names, as {name, chat, ...}.
const relay = (chatId, event) => io.to(chatId).emit(event.name, event);

async function handle(req, res) {
  const url = new URL(req.url, "http://x");
  const route = routes.find(([p]) => (typeof p === "string" ? p === url.pathname : p.test(url.pathname)));
  const auth = req.headers.authorization ?? "";
  const user = auth.startsWith("Bearer ") ? byToken(auth.slice(7)) : undefined;
  if (!url.pathname.startsWith("/api/")) throw new Refusal(404, "no such route");
  if (!user) throw new Refusal(401, auth ? "invalid token" : "missing Authorization: Bearer <token>");
  if (!route) throw new Refusal(404, `no route ${url.pathname}`);
  if (!route[1].includes(req.method)) throw new Refusal(405, `${req.method} not allowed`);
  const param = typeof route[0] === "string" ? null : url.pathname.match(route[0])[1];
  let body = {};
  if (req.method === "POST" || req.method === "PUT") {
    const ct = (req.headers["content-type"] ?? "application/json").split(";")[0];
    if (ct !== "application/json") throw new Refusal(415, "send JSON");
    let raw = "";
    for await (const chunk of req) raw += chunk;
    try { body = raw ? JSON.parse(raw) : {}; } catch { throw new Refusal(400, "malformed JSON"); }
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Refusal(400, "body must be an object");
  }
  if (url.pathname === "/api/chats") {
    const { chat, created } = createChat(user, body.participants ?? [], body.key, body.title ?? null, body.state ?? null);
    return ok(res, created ? 201 : 200, chat);
  }
  if (url.pathname === "/api/messages") {
    const rec = chats.get(body.chatId);
    if (!rec) throw new Refusal(404, "chat not found");
    if (!isMember(user, rec)) throw new Refusal(403, "not a participant");
    if (typeof body.content !== "string") throw new Refusal(400, "content (a string) is required");
    const m = persist(rec.chat.id, user.id, body);
    io.to(rec.chat.id).emit("message", m);
    relay(rec.chat.id, { name: "CHAT_MESSAGE_ADDED", chat: rec.chat, message: m });
    return ok(res, 201, m);
  }
  if (url.pathname === "/api/repositories") {
    if (typeof body.name !== "string" || !body.name) throw new Refusal(400, "name is required");
    const r = { id: newId(), name: body.name, description: body.description ?? null, orgId: user.orgs[0] ?? null, createdAt: now(), updatedAt: now() };
    repositories.set(r.id, r);
    return ok(res, 201, r);
  }
  if (url.pathname.startsWith("/api/chats/")) {
    const rec = chats.get(param);
    if (!rec) throw new Refusal(404, "chat not found");
    if (!isMember(user, rec)) throw new Refusal(403, "not a participant");
    if (req.method === "PUT") {
      if (!("title" in body) && !("state" in body)) throw new Refusal(400, "send title and/or state");
      if ("title" in body) rec.chat.title = body.title;
      if ("state" in body) rec.chat.state = body.state;
      rec.chat.updatedAt = now();
      relay(rec.chat.id, { name: "CHAT_STATE_UPDATED", chat: rec.chat });
      return ok(res, 200, rec.chat);
    }
    if (url.pathname.endsWith("/participants")) {
      const p = body;
      if (typeof p.id !== "string" || !HEX24.test(p.id) || !TYPES.has(p.type)) throw new Refusal(400, "send {id, type}");
      const participant = { id: p.id, type: p.type };
      if (!rec.members.has(`${p.type}:${p.id}`)) {
        rec.members.add(`${p.type}:${p.id}`);
        // The joined entity rides along under its kind: user, agent or appIntegration.
        const who = p.type === "USER" ? { user: (({ id, name }) => ({ id, name }))(users.find((u) => u.id === p.id) ?? { id: p.id, name: null }) }
          : p.type === "AGENT" && agents.has(p.id) ? { agent: agents.get(p.id) } : {};
        relay(rec.chat.id, { name: "CHAT_PARTICIPANT_JOINED", chat: rec.chat, participant, ...who });
      }
      return ok(res, 200, participant);
    }
    if (url.pathname.endsWith("/repositories")) {
      const r = repositories.get(body.repositoryId);
      if (!r) throw new Refusal(404, "repository not found");
      relay(rec.chat.id, { name: "CHAT_REPOSITORY_ATTACHED", chat: rec.chat, repository: r });
      return ok(res, 200, rec.chat);
    }
    if (url.pathname.endsWith("/messages")) {
      const { items, meta } = page(rec, url.searchParams);
      return ok(res, 200, items, meta);
    }
    return ok(res, 200, rec.chat);
  }
  if (url.pathname === "/api/agents") {
    if (typeof body.name !== "string" || !body.name) throw new Refusal(400, "name is required");
    const a = { ...mkAgent(newId(), body.name, !!body.isPublic), goal: body.goal ?? null };
    agents.set(a.id, a);
    return ok(res, 201, a);
  }
  const a = agents.get(param);
  if (!a) throw new Refusal(404, "agent not found");
  if (!visible(user, a)) throw new Refusal(403, "agent not visible");
  if (req.method === "GET") return ok(res, 200, a);
  if (!user.orgs.includes(a.orgId)) throw new Refusal(403, "not a member of the agent's org");
  if (req.method === "DELETE") { agents.delete(a.id); return ok(res, 200, a); }
  for (const k of ["name", "goal", "description", "image", "isPublic", "tags", "welcomeMessage"]) if (k in body) a[k] = body[k];
  a.updatedAt = now();
  return ok(res, 200, a);
}

const http = createServer((req, res) => {
  handle(req, res).catch((e) => send(res, e.status ?? 500, { ok: false, error: { message: e.message } }));
});

// ---- realtime ----
const io = new Server(http);
const fail = (ack, message) => (typeof ack === "function" ? ack({ error: { message } }) : undefined);

function streamReply(chatId, trigger) {
  const agent = [...chats.get(chatId).members].find((m) => m.startsWith("AGENT:"))?.slice(6);
  if (!agent) return;
  const chunks = ["The reference ", "server streams ", "this reply ", "in five ", "chunks."];
  if (!trigger.streamResponse) {
    const m = persist(chatId, agent, { content: chunks.join("") }, { respondedToId: trigger.id });
    return setTimeout(() => io.to(chatId).emit("message", m), 5);
  }
  const at = now();
  const streamId = newId();
  const base = { id: newId(), content: "", contentDelta: null, chatId, chatKey: null, instructions: [], isStreaming: true, notes: [],
    respondedToId: trigger.id, responseUrl: null, senderId: agent, state: {}, streamId, streamResponse: false, type: "TEXT",
    createdAt: at, updatedAt: at, attachments: [], citations: [] };
  let content = "";
  chunks.forEach((contentDelta, i) => setTimeout(() => {
    content += contentDelta;
    const message = { ...base, content, contentDelta };
    io.to(chatId).emit("message:delta", { chatId, streamId, messageId: base.id, contentDelta, content, message });
    if (i === chunks.length - 1) {
      const rec = chats.get(chatId);
      const done = { ...base, content, isStreaming: false };
      rec.messages.push(done);
      io.to(chatId).emit("message:done", done);
    }
  }, 5 * (i + 1)));
}

io.on("connection", (socket) => {
  const user = byToken(socket.handshake.auth?.token);
  if (!user) {
    socket.emit("error", { message: "invalid token" });
    return socket.disconnect(true);
  }
  socket.emit("success", { entity: { id: user.id, type: "USER", name: user.name } });
  const chatOf = (p) => (p && typeof p === "object" && typeof p.chatId === "string" ? chats.get(p.chatId) : undefined);
  socket.on("chat:join", (p, ack) => {
    const rec = chatOf(p);
    if (!rec) return fail(ack, "chatId must name a chat");
    if (!isMember(user, rec)) return fail(ack, "not a participant");
    socket.join(rec.chat.id);
    ack?.({ data: { chatId: rec.chat.id } });
  });
  socket.on("chat:leave", (p, ack) => {
    if (!p || typeof p.chatId !== "string") return fail(ack, "chatId is required");
    socket.leave(p.chatId);
    ack?.({ data: { chatId: p.chatId } });
  });
  socket.on("message:send", (p, ack) => {
    try {
      if (!p || typeof p !== "object" || typeof p.content !== "string") throw new Refusal(400, "content (a string) is required");
      let rec = chatOf(p);
      if (!rec && typeof p.chatKey === "string" && Array.isArray(p.recipients)) rec = chats.get(createChat(user, p.recipients, p.chatKey).chat.id);
      if (!rec) throw new Refusal(400, "chatId, or chatKey + recipients, is required");
      if (!isMember(user, rec)) throw new Refusal(403, "not a participant");
      const m = persist(rec.chat.id, user.id, p);
      socket.join(rec.chat.id);
      ack?.({ data: { message: m, chatId: rec.chat.id } });
      io.to(rec.chat.id).emit("message", m);
      streamReply(rec.chat.id, m);
    } catch (e) {
      fail(ack, e.message);
    }
  });
  socket.onAny((event, ...args) => {
    const ack = args.at(-1);
    if (!["chat:join", "chat:leave", "message:send"].includes(event)) fail(ack, `unknown event ${event}`);
  });
});

http.listen(port, "127.0.0.1", () => {
  const url = `http://127.0.0.1:${http.address().port}`;
  const profile = { users: users.map(({ id, token, name }) => ({ id, token, name })), revokedToken: revoked,
    agents: { streaming: "5f0000000000000000000c01", echo: "5f0000000000000000000c02" }, capabilities: {} };
  console.log(JSON.stringify({ url, profile }));
});
