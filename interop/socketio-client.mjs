// Interop check with the npm socket.io-client (a client nobody here wrote).
//
//   node socketio-client.mjs http://127.0.0.1:4000
//
// Runs against a mock on its default world: connects with a token and gets
// `success`, joins a chat, sends a message with streamResponse, receives the
// echo, every delta and the done, and checks the ack shapes; then the bad
// token path (`error` then disconnect) and an error ack. Prints one JSON line
// with what it saw and exits non-zero on the first broken expectation.
import { io } from "socket.io-client";

const url = process.argv[2] ?? "http://127.0.0.1:4000";
const TOKEN =
  "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
const CHAT = "682f4b313981b5f54e96ea4b";
const HEX24 = /^[0-9a-f]{24}$/;

function fail(msg) {
  console.error(`interop failure: ${msg}`);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}
const withTimeout = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms))]);

async function happyPath() {
  const socket = io(url, { auth: { token: TOKEN }, transports: ["websocket"], reconnection: false });
  const success = await withTimeout(new Promise((res) => socket.once("success", res)), 5000, "success event");
  check(success?.entity?.type === "USER" && HEX24.test(success.entity.id), `success payload ${JSON.stringify(success)}`);

  const join = await withTimeout(socket.emitWithAck("chat:join", { chatId: CHAT }), 5000, "chat:join ack");
  check(join?.data?.chatId === CHAT && !join.error, `chat:join ack ${JSON.stringify(join)}`);

  const deltas = [];
  const echoes = [];
  const done = new Promise((res) => {
    socket.on("message", (m) => echoes.push(m));
    socket.on("message:delta", (d) => deltas.push(d));
    socket.on("message:done", res);
  });
  const ack = await withTimeout(
    socket.emitWithAck("message:send", {
      chatId: CHAT,
      content: "Hello from socket.io-client",
      type: "TEXT",
      streamResponse: true,
      state: { mock: { chunks: 12, chunkDelayMs: 2, firstChunkDelayMs: 0 } },
    }),
    5000,
    "message:send ack",
  );
  check(ack?.data?.chatId === CHAT && HEX24.test(ack.data.message?.id ?? ""), `message:send ack ${JSON.stringify(ack)}`);
  const final = await withTimeout(done, 10000, "message:done");

  check(echoes.some((m) => m.id === ack.data.message.id), "own message was not echoed to the room");
  check(deltas.length === 12, `expected 12 deltas, got ${deltas.length}`);
  let text = "";
  for (const d of deltas) {
    text += d.contentDelta;
    check(d.content === text, "delta content is not the running concatenation");
    check(d.streamId === deltas[0].streamId && d.messageId === deltas[0].messageId, "stream ids changed mid-stream");
    check(d.message?.isStreaming === true, "delta message not streaming");
  }
  check(final.content === text && final.isStreaming === false, "done is not the complete message");
  check(!echoes.some((m) => m.id === final.id), "a streamed reply was also sent as a plain message");

  const bad = await withTimeout(socket.emitWithAck("chat:join", { chatId: 42 }), 5000, "error ack");
  check(typeof bad?.error?.message === "string" && bad.error.message.length > 0 && !bad.data, `error ack ${JSON.stringify(bad)}`);
  const unknown = await withTimeout(socket.emitWithAck("chat:frobnicate", {}), 5000, "unknown event ack");
  check(typeof unknown?.error?.message === "string", `unknown event ack ${JSON.stringify(unknown)}`);

  const left = await withTimeout(socket.emitWithAck("chat:leave", { chatId: CHAT }), 5000, "chat:leave ack");
  check(left?.data?.chatId === CHAT, `chat:leave ack ${JSON.stringify(left)}`);
  socket.close();
  return { entity: success.entity.name, deltas: deltas.length, text: final.content.length };
}

async function badToken() {
  const socket = io(url, { auth: { token: "user-nope" }, transports: ["websocket"], reconnection: false });
  // Both packets may arrive in one tick: listen for both before awaiting either.
  const order = [];
  const errorP = new Promise((res) => socket.once("error", (e) => (order.push("error"), res(e))));
  const reasonP = new Promise((res) => socket.once("disconnect", (r) => (order.push("disconnect"), res(r))));
  const error = await withTimeout(errorP, 5000, "error event for a bad token");
  check(typeof error?.message === "string" && error.message.length > 0, `error payload ${JSON.stringify(error)}`);
  const reason = await withTimeout(reasonP, 5000, "disconnect after error");
  check(order.join(",") === "error,disconnect", `expected error then disconnect, saw ${order}`);
  check(reason === "io server disconnect", `disconnect reason ${reason}`);
  socket.close();
  return { error: error.message, reason };
}

try {
  const seen = { happy: await happyPath(), badToken: await badToken() };
  console.log(JSON.stringify(seen));
  process.exit(0);
} catch (e) {
  fail(e.message);
}
