import { io } from "socket.io-client";

const T = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
const socket = io("http://127.0.0.1:46831", { auth: { token: T } });
socket.on("success", ({ entity }) => console.log("hello", entity.name));
socket.on("message:delta", ({ content }) => console.log(content));
socket.on("message:done", (m) => {
  console.log("final:", m.content);
  socket.close(); // done: let node exit
});
socket.emit("message:send",
  { chatId: "682f4b313981b5f54e96ea4b", content: "Hi!", streamResponse: true },
  (ack) => console.log("sent", ack.data?.message.id));
