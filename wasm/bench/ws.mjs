// WebSocket echo benchmark. `server` mode: an echo server on PORT, with tether's package or
// the ws package. `client` mode: the ws package's client sends SIZE-byte binary messages and
// waits for each echo, WINDOW in flight, for SECONDS; prints messages/s as JSON.
//   node wasm/bench/ws.mjs server tether|ws PORT PACKAGE_ENTRY WS_PATH
//   node wasm/bench/ws.mjs client URL SIZE SECONDS WINDOW WS_PATH
import { createRequire } from 'node:module';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server') {
  const [kind, port, entry, wsPath] = args;
  if (kind === 'tether') {
    const { Server } = await import(entry);
    const server = new Server(
      async (request) => {
        const socket = await request.upgrade().catch(() => null);
        if (!socket) return;
        for await (const message of socket) await socket.send(message);
      },
      { onError: () => {}, websocket: { maxMessageSize: 1 << 24 } },
    );
    await server.listen({ port: Number(port) });
  } else {
    const { WebSocketServer } = createRequire(import.meta.url)(wsPath);
    const server = new WebSocketServer({ port: Number(port), host: '127.0.0.1', perMessageDeflate: false });
    server.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
    await new Promise((resolve) => server.once('listening', resolve));
  }
  console.log('ready');
} else {
  const [url, size, seconds, window, wsPath] = args;
  const WebSocket = createRequire(import.meta.url)(wsPath);
  const socket = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const payload = Buffer.alloc(Number(size), 7);
  let done = 0;
  let measuring = false;
  const stop = performance.now() + 500 + Number(seconds) * 1000;
  let started = 0;
  await new Promise((resolve) => {
    socket.on('message', () => {
      if (measuring) done += 1;
      if (!measuring && performance.now() > stop - Number(seconds) * 1000) {
        measuring = true;
        started = performance.now();
      }
      if (performance.now() < stop) socket.send(payload);
      else resolve();
    });
    for (let i = 0; i < Number(window); i++) socket.send(payload);
  });
  console.log(JSON.stringify({ size: Number(size), mps: done / ((performance.now() - started) / 1000) }));
  socket.terminate();
}
