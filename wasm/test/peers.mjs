// Peers the package's tests talk to, none of them ours: Node's `http` server (in every
// runtime through its node:http), the `ws` package, curl, undici, the tokio demo binary.

import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';

const root = new URL('../../', import.meta.url);
const requireFromPeers = createRequire(new URL('target/peers-node/package.json', root));

/** The `ws` package (installed by scripts/peers.sh). */
export function ws() {
  return requireFromPeers('ws');
}

/** undici (installed by scripts/peers.sh), by path: Bun maps the bare name to its own. */
export function undici() {
  return requireFromPeers(new URL('target/peers-node/node_modules/undici/index.js', root).pathname);
}

/** A node:http server on a free loopback port: `{ url, port, server, connections, close }`. */
export async function httpServer(handler) {
  const server = http.createServer(handler);
  const sockets = new Set();
  let connections = 0;
  server.on('connection', (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A raw TCP server: `onSocket(socket)` per connection. */
export async function tcpServer(onSocket) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Sends `bytes` on a fresh connection and collects everything until the peer closes (bounded). */
export function rawExchange(port, chunks, { delays = [], timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const received = [];
    const started = performance.now();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeout} ms; got ${Buffer.concat(received).toString('latin1')}`));
    }, timeout);
    socket.on('data', (d) => received.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(received).toString('latin1'), ms: performance.now() - started });
    });
    (async () => {
      for (let i = 0; i < chunks.length; i++) {
        if (socket.destroyed) return;
        socket.write(chunks[i]);
        if (delays[i]) await new Promise((r) => setTimeout(r, delays[i]));
      }
    })();
  });
}

/** Runs a command to its end: `{ code, stdout, stderr }` (bounded). */
export function run(command, args, { input, timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ran over ${timeout} ms`));
    }, timeout);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/**
 * The tokio demo server (`TETHER_DEMO`: path of its binary), on a free port: `{ url, close }`,
 * or null when the binary is not given (and peers are not required).
 */
export async function tokioDemo() {
  const binary = process.env.TETHER_DEMO;
  if (!binary) {
    if (process.env.TETHER_REQUIRE_PEERS) throw new Error('TETHER_DEMO is not set');
    return null;
  }
  const probe = await tcpServer(() => {});
  const port = probe.port;
  await probe.close();
  const child = spawn(binary, ['--addr', `127.0.0.1:${port}`], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        child.on('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A test CA and a certificate for `localhost` and 127.0.0.1 signed by it (openssl, in a
 * temp dir): `{ ca, key, cert }` as PEM text.
 */
export async function testCertificates() {
  const { mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'tether-tls-'));
  const at = (name) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const steps = [
    ['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', '/CN=tether test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
    ['req', ...ec, '-keyout', at('key.pem'), '-out', at('req.csr'), '-subj', '/CN=localhost'],
  ];
  for (const args of steps) {
    const result = await run('openssl', args);
    if (result.code !== 0) throw new Error(`openssl ${args[0]}: ${result.stderr}`);
  }
  writeFileSync(at('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  const sign = await run('openssl', ['x509', '-req', '-in', at('req.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('cert.pem'), '-days', '2', '-extfile', at('ext.cnf')]);
  if (sign.code !== 0) throw new Error(`openssl x509: ${sign.stderr}`);
  return { ca: readFileSync(at('ca.pem'), 'utf8'), key: readFileSync(at('key.pem'), 'utf8'), cert: readFileSync(at('cert.pem'), 'utf8') };
}
