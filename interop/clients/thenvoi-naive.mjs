// A deliberately naive Thenvoi agent: it proves the Thenvoi client scenarios
// can fail (conformance/tests/clients.rs). Raw WebSocket, one join, no
// reconnect; it takes every pushed message as meant for it (its own and
// other agents' too), does the work first and marks it processed without
// ever claiming it.
import WebSocket from "ws";

const env = process.env;
const base = env.PROTEUS_URL;
const key = env.THENVOI_API_KEY;
const room = env.THENVOI_ROOM_ID;
const last = env.PROTEUS_CONTENT;
const say = (line) => console.log(JSON.stringify(line));
setTimeout(() => {
  say({ event: "timeout" });
  process.exit(0);
}, Number(env.PROTEUS_TIMEOUT_MS ?? 2000));

const api = async (path, body) => {
  const r = await fetch(`${base}/api/v1/agent${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key },
    body: JSON.stringify(body ?? {}),
  });
  if (!r.ok) say({ event: "error", message: `${path} answered ${r.status}`, status: r.status });
};

const ws = new WebSocket(`${base.replace(/^http/, "ws")}/api/v1/socket/websocket?vsn=2.0.0&api_key=${key}`);
ws.on("open", () => ws.send(JSON.stringify(["1", "1", `chat_room:${room}`, "phx_join", {}])));
ws.on("message", async (data) => {
  const [, ref, , event, payload] = JSON.parse(data.toString());
  if (event === "phx_reply" && ref === "1") say({ event: "connected" });
  if (event !== "message_created") return;
  await api(`/chats/${room}/messages`, {
    message: { content: `handled: ${payload.content}`, mentions: [{ id: payload.sender_id }] },
  });
  await api(`/chats/${room}/messages/${payload.id}/processed`);
  say({ event: "handled", messageId: payload.id });
  if (payload.content === last) setTimeout(() => process.exit(0), Number(env.PROTEUS_LINGER_MS ?? 500));
});
ws.on("error", () => {});
