// Artillery processor: gives each virtual user its own chat with the Streamer
// agent (as proteus-load's chat scenario does) without a timed request, so
// the run's latencies are the emit -> ack ones only.
const http = require("http");

const TOKEN = "user-3a4d80a9c3cca7ffd1bc341f.ede04d00e4b168bed35d9fcde8c2f92f.00d7fecf89201691f94b01e5b294da65.e7ea4c191b2c9a059ce5658deb7349c26a931ed8b7a04bf0";
const STREAMER = "6819a0e484df0fc342cea506";

function ownChat(context, events, done) {
  const body = JSON.stringify({ participants: [{ id: STREAMER, type: "AGENT" }] });
  const req = http.request(
    `${process.env.TARGET}/api/chats`,
    { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } },
    (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        try {
          context.vars.chatId = JSON.parse(text).data.id;
          done();
        } catch (e) {
          done(new Error(`POST /api/chats answered ${res.statusCode}: ${text}`));
        }
      });
    },
  );
  req.on("error", done);
  req.end(body);
}

module.exports = { ownChat };
