// The package inside Cloudflare's workerd: a Worker (workerd/worker.mjs) uses the package's
// Client over workerd's `connect()` against a Node HTTP server and a `ws` echo server on
// 127.0.0.1, and answers JSON that this test checks. Node only (it starts the servers and
// workerd as a child process):  node --test wasm/test/workerd.test.mjs
//
// workerd: $TETHER_WORKERD, or target/js-runtimes/node_modules/@cloudflare/workerd-linux-64/
// bin/workerd (npm install --prefix target/js-runtimes @cloudflare/workerd-linux-64).
// The package: target/wasm-test-pkg (scripts/wasm-build.sh --test).
// The echo server: Node's ws under target/peers-node (scripts/peers.sh).
import { test } from './harness.mjs';

const underNode = !globalThis.Deno && !globalThis.Bun && typeof process !== 'undefined' && !!process.versions?.node;

if (!underNode) {
  console.log('# skipped: workerd.test.mjs runs under Node only (it starts workerd and the servers)');
} else {
  await defineTests();
}

async function defineTests() {
  const { spawn } = await import('node:child_process');
  const fs = await import('node:fs');
  const http = await import('node:http');
  const net = await import('node:net');
  const os = await import('node:os');
  const path = await import('node:path');
  const { createRequire } = await import('node:module');
  const { fileURLToPath } = await import('node:url');
  const assert = (await import('node:assert/strict')).default;

  const root = fileURLToPath(new URL('../../', import.meta.url));
  const pkg = path.join(root, 'target/wasm-test-pkg');
  const workerd = process.env.TETHER_WORKERD || path.join(root, 'target/js-runtimes/node_modules/@cloudflare/workerd-linux-64/bin/workerd');
  const wsPath = path.join(root, 'target/peers-node/node_modules/ws');

  /** A port nobody listens on right now (the OS picks it; we close it again). */
  function freePort() {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
  }

  /** Rejects after `ms`: every wait below is raced against one of these. */
  function deadline(ms, what) {
    let timer;
    const promise = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    });
    return { promise, cancel: () => clearTimeout(timer) };
  }

  async function bounded(promise, ms, what) {
    const limit = deadline(ms, what);
    try {
      return await Promise.race([promise, limit.promise]);
    } finally {
      limit.cancel();
    }
  }

  /** The package files workerd.js needs, by following static imports from it. */
  function moduleGraph() {
    const seen = new Set();
    const visit = (rel) => {
      if (seen.has(rel)) return;
      seen.add(rel);
      if (!rel.endsWith('.js')) return;
      const source = fs.readFileSync(path.join(pkg, rel), 'utf8');
      for (const [, spec] of source.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"](\.[^'"]+)['"]/gm)) {
        visit(path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec)));
      }
    };
    visit('workerd.js');
    return [...seen].sort();
  }

  /** A temp dir holding the config, worker.mjs and a `pkg` link to the package. */
  function writeConfig(dir) {
    const entries = ['(name = "worker.mjs", esModule = embed "worker.mjs")'];
    for (const rel of moduleGraph()) {
      const kind = rel.endsWith('.wasm') ? 'wasm' : 'esModule';
      entries.push(`(name = "pkg/${rel}", ${kind} = embed "pkg/${rel}")`);
    }
    const template = fs.readFileSync(new URL('./workerd/config.capnp.in', import.meta.url), 'utf8');
    fs.writeFileSync(path.join(dir, 'config.capnp'), template.replaceAll('@MODULES@', entries.join(',\n    ')));
    fs.copyFileSync(new URL('./workerd/worker.mjs', import.meta.url), path.join(dir, 'worker.mjs'));
    fs.symlinkSync(pkg, path.join(dir, 'pkg'));
  }

  /** The upstream: plain routes the Worker's client talks to. */
  function startHttp() {
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (chunk) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        switch (req.url) {
          case '/hello':
            res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': '15', 'x-peer': 'node' });
            return res.end('hello from node');
          case '/echo':
            res.writeHead(200, { 'content-type': 'application/json', 'x-peer': 'node' });
            return res.end(JSON.stringify({
              method: req.method,
              contentType: req.headers['content-type'] ?? null,
              transferEncoding: req.headers['transfer-encoding'] ?? null,
              xTest: req.headers['x-test'] ?? null,
              length: body.length,
              body: body.length <= 256 ? body.toString() : null,
            }));
          case '/big':
            // Several writes without a length: a chunked body read piece by piece.
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-peer': 'node' });
            for (let i = 0; i < 8; i++) res.write(Buffer.alloc(8192, 120));
            return res.end();
          case '/redirect':
            res.writeHead(302, { location: '/hello' });
            return res.end();
          case '/stall':
            // Never answered: the client's own timeout must end it (the socket is closed
            // when the server shuts down).
            return;
          default:
            res.writeHead(404);
            return res.end();
        }
      });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
  }

  async function startWs() {
    const require = createRequire(import.meta.url);
    const { WebSocketServer } = require(wsPath);
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (protocols) => (protocols.has('echo') ? 'echo' : false) });
    server.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
    await new Promise((resolve) => server.once('listening', resolve));
    return server;
  }

  /** Starts workerd and waits (bounded) until the Worker answers /ping. */
  async function startWorkerd(dir, httpPort, strictPort) {
    const child = spawn(workerd, ['serve', path.join(dir, 'config.capnp'), '--socket-addr', `http=127.0.0.1:${httpPort}`, '--socket-addr', `strict=127.0.0.1:${strictPort}`], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (chunk) => (log += chunk));
    child.stderr.on('data', (chunk) => (log += chunk));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const started = Date.now();
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`workerd exited (${child.exitCode ?? child.signalCode}):\n${log}`);
      }
      try {
        const response = await fetch(`http://127.0.0.1:${httpPort}/ping`, { signal: AbortSignal.timeout(1000) });
        if ((await response.text()) === 'pong') break;
      } catch {}
      if (Date.now() - started > 20_000) {
        child.kill('SIGKILL');
        throw new Error(`workerd did not answer within 20 s:\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { child, exited, log: () => log };
  }

  async function stopWorkerd(instance) {
    instance.child.kill('SIGTERM');
    const limit = deadline(5000, 'workerd to exit');
    try {
      await Promise.race([instance.exited, limit.promise]);
    } catch {
      instance.child.kill('SIGKILL');
      await bounded(instance.exited, 5000, 'workerd to exit after SIGKILL');
    } finally {
      limit.cancel();
    }
  }

  test('workerd: the package client over connect() to loopback servers', async (t) => {
    if (!fs.existsSync(workerd)) {
      t.skip(`no workerd at ${workerd} (set TETHER_WORKERD, or npm install --prefix target/js-runtimes @cloudflare/workerd-linux-64)`);
      return;
    }
    assert.ok(fs.existsSync(path.join(pkg, 'tether_wasm_bg.wasm')), `no package at ${pkg}: run scripts/wasm-build.sh --test`);
    const haveWs = fs.existsSync(wsPath);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-workerd-'));
    const upstream = await startHttp();
    const echo = haveWs ? await startWs() : null;
    let instance = null;
    try {
      writeConfig(dir);
      const [port, strictPort, closedPort] = [await freePort(), await freePort(), await freePort()];
      instance = await startWorkerd(dir, port, strictPort);
      const base = `http://127.0.0.1:${upstream.address().port}`;

      /** One scenario through the Worker: its JSON answer (status checked). */
      const run = async (name, url, { strict = false, status = 200, query = '', wait = 15_000 } = {}) => {
        const worker = `http://127.0.0.1:${strict ? strictPort : port}/${name}?url=${encodeURIComponent(url)}&${query}`;
        const response = await fetch(worker, { signal: AbortSignal.timeout(wait) });
        const text = await response.text();
        assert.equal(response.status, status, `${name}: ${text}\n${instance.log()}`);
        return JSON.parse(text);
      };
      /** After each scenario the client is closed: nothing of it is left in the module. */
      const idle = (stats, what) => {
        assert.equal(stats.sockets, 0, `${what}: sockets left ${JSON.stringify(stats)}`);
        assert.equal(stats.hostSockets, 0, `${what}: host sockets left ${JSON.stringify(stats)}`);
        assert.equal(stats.pending, 0, `${what}: operations left ${JSON.stringify(stats)}`);
      };

      await t.test('GET', async () => {
        const { result, stats } = await run('get', `${base}/hello`);
        assert.deepEqual(result, {
          status: 200,
          ok: true,
          headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': '15', 'x-peer': 'node' },
          body: 'hello from node',
        });
        idle(stats, 'GET');
      });

      await t.test('POST: JSON, then text on the kept-alive connection', async () => {
        const { result, stats } = await run('post', `${base}/echo`);
        assert.equal(result.json.status, 200);
        assert.equal(result.json.headers['x-peer'], 'node');
        assert.deepEqual(JSON.parse(result.json.body), {
          method: 'POST', contentType: 'application/json', transferEncoding: null, xTest: null, length: 25, body: '{"from":"workerd","n":42}',
        });
        assert.deepEqual(JSON.parse(result.text.body), {
          method: 'POST', contentType: 'text/plain; charset=utf-8', transferEncoding: null, xTest: 'two', length: 10, body: 'plain text',
        });
        // Both went over one connection, idle in the pool before the client closed.
        assert.deepEqual(result.pool, { idle: 1, inUse: 0, opening: 0, waiting: 0 });
        idle(stats, 'POST');
      });

      await t.test('streamed upload and a response read piece by piece', async () => {
        const { result, stats } = await run('stream', `${base}/big`);
        assert.equal(result.status, 200);
        assert.equal(result.headers['transfer-encoding'], 'chunked');
        assert.equal(result.received, 8 * 8192);
        assert.ok(result.chunks >= 1);
        idle(stats, 'stream');
      });

      await t.test('streamed upload arrives chunked and whole', async () => {
        // The same upload against /echo, which reports what it got.
        const { result } = await run('stream', `${base}/echo`);
        assert.equal(result.status, 200);
        const got = JSON.parse(result.body);
        assert.equal(got.method, 'POST');
        assert.equal(got.transferEncoding, 'chunked');
        assert.equal(got.length, 16 * 4096);
      });

      await t.test('redirect followed by the module', async () => {
        const { result } = await run('redirect', `${base}/redirect`);
        assert.equal(result.status, 200);
        assert.equal(result.body, 'hello from node');
      });

      await t.test("the client's timeout (the host's timer) inside workerd", async () => {
        const { result, stats } = await run('timeout', `${base}/stall`);
        assert.ok(result.error, 'the stalled request must fail');
        assert.equal(result.error.code, 'TOTAL_TIMEOUT', JSON.stringify(result));
        assert.equal(result.error.name, 'TotalTimeoutError');
        assert.ok(result.elapsed >= 250 && result.elapsed < 5000, `elapsed ${result.elapsed} ms`);
        idle(stats, 'timeout');
      });

      await t.test("a later request's timeout fires though an earlier request's timer died with it", async () => {
        // workerd cancels a request's timers when it ends: the GET leaves the host's one timer
        // armed for its (later, unused) 400 ms deadline; the next request's deadline must
        // still get a timer of its own.
        await run('get', `${base}/hello`, { query: 'total=400' });
        const { result, stats } = await run('timeout', `${base}/stall`, { query: 'stall=600', wait: 5000 });
        assert.equal(result.error?.code, 'TOTAL_TIMEOUT', JSON.stringify(result));
        assert.ok(result.elapsed >= 550 && result.elapsed < 4000, `elapsed ${result.elapsed} ms`);
        idle(stats, 'timeout after a finished request');
      });

      await t.test('connection refused: a typed connect error', async (t) => {
        const { result } = await run('refused', `http://127.0.0.1:${closedPort}/`);
        assert.ok(result.error, 'nobody listens there');
        assert.equal(result.error.name, 'ConnectError', JSON.stringify(result));
        t.diagnostic(`refused: ${JSON.stringify(result.error)}`);
      });

      await t.test("workerd's default outbound refuses loopback", async (t) => {
        const { result } = await run('get', `${base}/hello`, { strict: true, status: 500 });
        // workerd writes its log line on its own schedule: wait for it (bounded).
        for (let i = 0; i < 40 && !/is not allowed/.test(instance.log()); i++) await new Promise((r) => setTimeout(r, 50));
        t.diagnostic(`default outbound: ${JSON.stringify(result.error)}; log: ${instance.log().match(/connecting to .* is not allowed/)?.[0]}`);
        assert.equal(result.error.name, 'ConnectError', JSON.stringify(result));
        assert.match(result.error.message, /cannot connect to the specified address/);
        assert.match(instance.log(), /connecting to 127\.0\.0\.1:\d+ is not allowed/);
      });

      await t.test('WebSocket echo', async (t) => {
        if (!haveWs) {
          t.skip(`no ws at ${wsPath} (scripts/peers.sh installs it)`);
          return;
        }
        const { result, stats } = await run('ws', `ws://127.0.0.1:${echo.address().port}/`);
        assert.equal(result.protocol, 'echo');
        assert.deepEqual(result.text, { type: 'text', data: 'hello from workerd' });
        assert.deepEqual(result.binary, { type: 'binary', data: [1, 2, 3, 250] });
        assert.equal(result.closed.code, 1000);
        assert.equal(result.closed.clean, true);
        idle(stats, 'ws');
        // The closed WebSocket's handle stays in the module while the JS object lives (it
        // is released by a FinalizationRegistry), so it is not counted here.
      });

      await t.test('after all: the module holds nothing', async (t) => {
        const { stats } = JSON.parse(await (await fetch(`http://127.0.0.1:${port}/stats`, { signal: AbortSignal.timeout(5000) })).text());
        idle(stats, 'end');
        assert.equal(stats.operations, 0);
        assert.equal(stats.tasks, 0);
        t.diagnostic(`module after all scenarios: ${JSON.stringify(stats)}`);
      });
    } finally {
      if (instance) await stopWorkerd(instance);
      upstream.closeAllConnections();
      await bounded(new Promise((resolve) => upstream.close(resolve)), 5000, 'the HTTP server to close');
      if (echo) {
        for (const client of echo.clients) client.terminate();
        await bounded(new Promise((resolve) => echo.close(resolve)), 5000, 'the ws server to close');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, { timeout: 90_000 });
}
