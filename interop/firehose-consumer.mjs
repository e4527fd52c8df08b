// The node side of the generator-ceiling benchmark (bench/ceiling.sh): one
// npm socket.io-client socket consumes a firehose from the blaster (or any
// server with POST /__admin/firehose) and reports deltas, wall seconds and
// its own CPU seconds as one JSON line. It only counts and tracks stream ids:
// far less work per delta than proteus-load, which also checks every delta.
//
//   node firehose-consumer.mjs URL TOKEN STREAMS CHUNKS SIZE
import { io } from "socket.io-client";

const [url, token, streams, chunks, size] = process.argv.slice(2);
const total = Number(streams);
const post = async (path, body) => {
  const r = await fetch(url + path, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  return r.json();
};
const chat = (await post("/api/chats", { participants: [] })).data.id;
const socket = io(url, { auth: { token }, transports: ["websocket"] });
await new Promise((ok, fail) => { socket.on("success", ok); socket.on("connect_error", fail); });
await socket.emitWithAck("chat:join", { chatId: chat });
let deltas = 0, done = 0, first = 0;
const cpu0 = process.cpuUsage();
const finished = new Promise((ok) => {
  socket.on("message:delta", (d) => { if (!first) first = performance.now(); deltas++; });
  socket.on("message:done", () => { if (++done === total) ok(); });
});
const t0 = performance.now();
await post("/__admin/firehose", { chatId: chat, streams: total, deltas: Number(chunks), size: Number(size), rate: 0 });
const timeout = setTimeout(() => { console.log(JSON.stringify({ error: "timed out", deltas, done })); process.exit(1); }, 300_000);
await finished;
clearTimeout(timeout);
const seconds = (performance.now() - first) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ client: "socket.io-client", deltas, seconds, deltasPerSecond: deltas / seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, setupSeconds: (first - t0) / 1000 }));
socket.close();
