// Interop check with the official JavaScript Phoenix client (npm `phoenix`),
// which nobody here wrote, against a running proteus-mock's Thenvoi socket.
//
//   node phoenix-client.mjs http://127.0.0.1:4000 [idle-timeout-ms]
//
// As the default world's agent Helper: connect (the client adds vsn=2.0.0),
// join chat_room and agent_rooms, stay connected past the server's idle
// timeout on heartbeats alone, receive the message_created of a message
// that mentions Helper (and not one that mentions Echo only), leave. Prints
// one JSON line of what it saw; exits 1 on a timeout.
import { Socket } from "phoenix";
import WebSocket from "ws";

const base = process.argv[2] ?? "http://127.0.0.1:4000";
const body = await (await fetch(`${base}/__admin/profile`)).json();
const profile = body.data ?? body;
const t = profile.thenvoi;
const helper = t.agents.find((a) => a.name === "Helper");
const echo = t.scripted.echo;
const room = t.rooms[0].id;
const human = t.users[0];
const idleMs = Number(process.argv[3] ?? t.idleTimeoutMs ?? 45000);
const seen = { joined: [], pushes: [], closes: 0, errors: 0 };

const fail = (why) => {
  console.log(JSON.stringify({ ...seen, failed: why }));
  process.exit(1);
};
setTimeout(() => fail("timed out"), 15000).unref();

const socket = new Socket(base.replace(/^http/, "ws") + "/api/v1/socket", {
  transport: WebSocket,
  params: { api_key: helper.apiKey, agent_id: helper.id },
  heartbeatIntervalMs: Math.max(100, Math.floor(idleMs / 4)),
});
socket.onClose(() => seen.closes++);
socket.onError(() => seen.errors++);
socket.connect();

const join = (topic) =>
  new Promise((resolve) => {
    const ch = socket.channel(topic, {});
    ch.on("message_created", (m) => seen.pushes.push({ topic, content: m.content, sender: m.sender_type }));
    ch.join()
      .receive("ok", () => { seen.joined.push(topic); resolve(ch); })
      .receive("error", (r) => fail(`join ${topic}: ${JSON.stringify(r)}`));
  });

const post = (content, mention) =>
  fetch(`${base}/api/v1/me/chats/${room}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": human.apiKey },
    body: JSON.stringify({ message: { content, mentions: [{ id: mention }] } }),
  }).then((r) => r.status);

const chat = await join(`chat_room:${room}`);
await join(`agent_rooms:${helper.id}`);
// Silence but for heartbeats, longer than the idle timeout (at most 3 s, so
// against the default 45 s this only shows that joins hold): still connected.
await new Promise((r) => setTimeout(r, Math.min(Math.floor(idleMs * 1.5), 3000)));
seen.connectedAfterIdle = socket.isConnected();
seen.posted = [await post("only for Echo", echo.id), await post("hello Helper", helper.id)];
while (!seen.pushes.some((p) => p.content === "hello Helper")) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 200)); // room for a wrong delivery to show up
await new Promise((resolve) => chat.leave().receive("ok", resolve));
seen.left = true;
socket.disconnect(() => {
  console.log(JSON.stringify(seen));
  process.exit(0);
});
