// A hello-world server for the server benchmark: tether's package or node:http, on PORT.
//   node wasm/bench/server.mjs tether|node PORT PACKAGE_ENTRY
import http from 'node:http';

const [kind, port, entry] = process.argv.slice(2);
const body = 'Hello, World!';
if (kind === 'tether') {
  const { Server } = await import(entry);
  const server = new Server(() => body, { onError: () => {} });
  await server.listen({ port: Number(port) });
} else {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 75_000;
  await new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
}
if (!process.listenerCount('SIGTERM')) process.on('SIGTERM', () => process.exit(0));
console.log('ready');
