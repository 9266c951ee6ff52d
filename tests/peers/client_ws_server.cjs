// A Node `ws` echo server (permessage-deflate on) for testing our WebSocket client. Prints
// its port. Echoes every message with its type; pings each new connection with "srv"; the
// text "info" answers JSON {protocol, extensions, pong}; the text "close-me" closes with 4001.
const { WebSocketServer } = require("ws");

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: true,
  maxPayload: 4 << 20,
  handleProtocols: (protocols) => (protocols.has("echo") ? "echo" : false),
});

wss.on("listening", () => {
  console.log(String(wss.address().port));
});

wss.on("connection", (ws) => {
  let pong = null;
  ws.on("pong", (data) => {
    pong = data.toString();
  });
  ws.ping(Buffer.from("srv"));
  ws.on("message", (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString();
      if (text === "info") {
        ws.send(JSON.stringify({ protocol: ws.protocol, extensions: ws.extensions, pong }));
        return;
      }
      if (text === "close-me") {
        ws.close(4001, "asked to");
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on("error", (e) => console.error(String(e)));
});
