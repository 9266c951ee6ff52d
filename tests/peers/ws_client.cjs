// A Node `ws` client against our /ws echo; prints JSON. Compression on with --deflate.
const WebSocket = require("ws");

const url = process.argv[2];
const deflate = process.argv.includes("--deflate");
const messages = ["hello", "ünïcödé ✓", "y".repeat(100_000), ""];
const binary = [Buffer.alloc(70_000, 7), Buffer.from([0, 255, 1])];

const ws = new WebSocket(url, ["echo"], { perMessageDeflate: deflate });
const result = { echoed: [] };
const queue = [...messages.map((m) => [m, false]), ...binary.map((b) => [b, true])];
let expected = null;

function next() {
  const item = queue.shift();
  if (!item) {
    ws.ping(Buffer.from("ping!"));
    return;
  }
  expected = item;
  ws.send(item[0], { binary: item[1] });
}

ws.on("open", () => {
  result.protocol = ws.protocol;
  result.extensions = ws.extensions;
  next();
});
ws.on("message", (data, isBinary) => {
  const [want, wantBinary] = expected;
  const same = isBinary === wantBinary && Buffer.from(data).equals(Buffer.from(want));
  result.echoed.push(same);
  next();
});
ws.on("pong", (data) => {
  result.pong = data.toString();
  ws.close(1000, "bye");
});
ws.on("close", (code, reason) => {
  result.close_code = code;
  result.close_reason = reason.toString();
  console.log(JSON.stringify(result));
});
ws.on("error", (e) => {
  console.error(String(e));
  process.exit(1);
});
