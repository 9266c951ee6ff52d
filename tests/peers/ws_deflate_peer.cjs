// Node `ws` as the other side of the permessage-deflate matrix (tests/tests/ws_deflate_matrix.rs).
//
//   node ws_deflate_peer.cjs server
//     An echo server; prints its port. Each connection's permessage-deflate options come
//     from its URL: /?opts=<JSON of ws's perMessageDeflate options>.
//   node ws_deflate_peer.cjs client <url> <JSON list of cases>
//     For each case {path, opts}: connects to url + path offering opts, sends the message
//     set below, checks every echo, closes, and prints one
//     JSON array of {params, echoed, error}: ws's view of the negotiated parameters, whether
//     each message came back as sent, and the error if the connection failed.
const http = require("http");
const { WebSocket, WebSocketServer } = require("ws");

const MAX_PAYLOAD = 4 << 20;

/// Text that repeats every 3000 bytes: a compressor whose window is larger than the one
/// negotiated would refer 3000 bytes back, which zlib refuses to inflate with a smaller window.
function text(size) {
  let paragraph = "";
  for (let i = 0; paragraph.length < 3000; i++) {
    paragraph += `line ${i}: the quick brown fox, ünïcödé ✓, jumps over ${i * 7919} dogs\n`;
  }
  const unit = Buffer.from(paragraph).subarray(0, 3000);
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += unit.length) unit.copy(out, at);
  // Cut on a character boundary: drop a trailing partial UTF-8 sequence.
  let end = size;
  while (end > 0 && (out[end - 1] & 0xc0) === 0x80) end--;
  if (end > 0 && out[end - 1] >= 0xc0) end--;
  return out.subarray(0, end === 0 ? 0 : end);
}

/// Bytes with runs, a counter and noise, repeating every 5000 bytes.
function binary(size) {
  const out = Buffer.alloc(size);
  let seed = 12345;
  for (let i = 0; i < size; i++) {
    const j = i % 5000;
    if (j < 2000) out[i] = j & 0xff;
    else if (j < 3000) out[i] = 0x55;
    else {
      seed = (seed * 1103515245 + 12345) >>> 0;
      out[i] = (j === 3000 ? (seed = 777) : seed) >>> 24;
    }
  }
  return out;
}

/// 0 B, 16 B, 64 KiB and 1 MiB; text and binary; fragmented and not.
const messages = [
  { data: text(0), binary: false, fragments: 1 },
  { data: binary(16), binary: true, fragments: 2 },
  { data: text(64 << 10), binary: false, fragments: 3 },
  { data: binary(64 << 10), binary: true, fragments: 1 },
  { data: binary(1 << 20), binary: true, fragments: 4 },
  { data: text(1 << 20), binary: false, fragments: 1 },
];

/// ws's negotiated permessage-deflate parameters (null without compression).
function negotiated(ws) {
  const extension = ws._extensions && ws._extensions["permessage-deflate"];
  return extension ? extension.params : null;
}

function server() {
  const servers = new Map();
  const httpServer = http.createServer((req, res) => res.writeHead(404).end());
  httpServer.on("upgrade", (req, socket, head) => {
    const opts = new URL(req.url, "http://x").searchParams.get("opts") || "{}";
    let wss = servers.get(opts);
    if (!wss) {
      const perMessageDeflate = { ...JSON.parse(opts), threshold: 0 };
      wss = new WebSocketServer({ noServer: true, perMessageDeflate, maxPayload: MAX_PAYLOAD });
      servers.set(opts, wss);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary && data.toString() === "params") {
          ws.send(JSON.stringify(negotiated(ws)));
          return;
        }
        ws.send(data, { binary: isBinary });
      });
      ws.on("error", (e) => console.error(String(e)));
    });
  });
  httpServer.listen(0, "127.0.0.1", () => console.log(String(httpServer.address().port)));
}

/// Sends `message` ({data, binary, fragments}) in `fragments` pieces.
function send(ws, message) {
  const { data, binary, fragments } = message;
  const step = Math.ceil(data.length / fragments) || 1;
  for (let i = 0; i < fragments; i++) {
    const piece = data.subarray(i * step, Math.min(data.length, (i + 1) * step));
    ws.send(piece, { binary, fin: i === fragments - 1 });
  }
}

function runCase(url, testCase) {
  return new Promise((resolve) => {
    const result = { params: null, echoed: [], error: null };
    const ws = new WebSocket(url + testCase.path, {
      perMessageDeflate: testCase.opts === false ? false : { ...testCase.opts, threshold: 0 },
      maxPayload: MAX_PAYLOAD,
    });
    let next = 0;
    const sendNext = () => {
      if (next === messages.length) {
        ws.close(1000, "done");
        return;
      }
      send(ws, messages[next]);
    };
    ws.on("open", () => {
      result.params = negotiated(ws);
      sendNext();
    });
    ws.on("message", (data, isBinary) => {
      const want = messages[next];
      result.echoed.push(isBinary === want.binary && Buffer.from(data).equals(want.data));
      next += 1;
      sendNext();
    });
    ws.on("error", (e) => {
      result.error = String(e);
    });
    ws.on("close", () => resolve(result));
  });
}

async function client(url, cases) {
  const results = [];
  for (const testCase of cases) {
    results.push(await runCase(url, testCase));
  }
  console.log(JSON.stringify(results));
}

if (process.argv[2] === "server") {
  server();
} else {
  client(process.argv[3], JSON.parse(process.argv[4])).catch((e) => {
    console.error(String(e));
    process.exit(1);
  });
}
