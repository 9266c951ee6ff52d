// The package's Client against servers we did not write: Node's http server, raw sockets
// playing broken servers, and the tokio demo.
import assert from 'node:assert/strict';
import { test, loadPackage } from './harness.mjs';
import { httpServer, tcpServer, tokioDemo, sleep, testCertificates, ws as wsPackage } from './peers.mjs';
import https from 'node:https';

const tether = await loadPackage();
const { Client } = tether;

function collect(req) {
  return new Promise((resolve) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
  });
}

test('client: GET with status, headers, text and json; keep-alive reuses one connection', async () => {
  const peer = await httpServer((req, res) => {
    res.setHeader('x-seen', req.url);
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(JSON.stringify({ path: req.url, ua: req.headers['user-agent'] }));
  });
  const client = new Client();
  try {
    for (let i = 0; i < 5; i++) {
      const response = await client.get(`${peer.url}/item/${i}?q=${i}`);
      assert.equal(response.status, 200);
      assert.equal(response.ok, true);
      assert.equal(response.headers.get('x-seen'), `/item/${i}?q=${i}`);
      assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
      const body = await response.json();
      assert.equal(body.path, `/item/${i}?q=${i}`);
      assert.match(body.ua, /^tether\//);
    }
    assert.equal(peer.connections, 1);
    assert.deepEqual(client.poolStats(peer.url), { idle: 1, inUse: 0, opening: 0, waiting: 0 });
  } finally {
    await client.close();
    await peer.close();
  }
});

test('client: request bodies from strings, bytes, forms, JSON, iterables and streams', async () => {
  const seen = [];
  const peer = await httpServer(async (req, res) => {
    const body = await collect(req);
    seen.push({ type: req.headers['content-type'], te: req.headers['transfer-encoding'], length: req.headers['content-length'] });
    res.end(body);
  });
  const client = new Client();
  try {
    const text = async (init) => (await client.post(peer.url, init)).text();
    assert.equal(await text({ body: 'héllo' }), 'héllo');
    assert.equal(await text({ body: new Uint8Array([104, 105]) }), 'hi');
    assert.equal(await text({ body: new URLSearchParams({ a: '1 2', b: 'x&y' }) }), 'a=1+2&b=x%26y');
    assert.equal(await text({ json: { n: 1 } }), '{"n":1}');
    async function* pieces() {
      for (let i = 0; i < 50; i++) {
        await sleep(1);
        yield `piece ${i};`;
      }
    }
    const streamed = await text({ body: pieces() });
    assert.equal(streamed, Array.from({ length: 50 }, (_, i) => `piece ${i};`).join(''));
    const readable = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('from a '));
        controller.enqueue(new TextEncoder().encode('ReadableStream'));
        controller.close();
      },
    });
    assert.equal(await text({ body: readable }), 'from a ReadableStream');
    assert.deepEqual(seen.map((s) => s.type), [
      'text/plain; charset=utf-8',
      undefined,
      'application/x-www-form-urlencoded',
      'application/json',
      undefined,
      undefined,
    ]);
    assert.equal(seen[0].length, String(Buffer.byteLength('héllo')));
    assert.equal(seen[4].te, 'chunked');
    assert.equal(seen[5].te, 'chunked');
  } finally {
    await client.close();
    await peer.close();
  }
});

test('client: a streamed body whose source fails is never sent as complete', async () => {
  let ended = 0;
  let aborted = 0;
  const peer = await httpServer((req, res) => {
    req.on('end', () => {
      ended += 1;
      res.end('complete?');
    });
    req.on('aborted', () => (aborted += 1));
    req.on('error', () => {});
  });
  const client = new Client();
  try {
    async function* failing() {
      yield 'first piece';
      await sleep(20);
      throw new Error('source broke');
    }
    await assert.rejects(client.post(peer.url, { body: failing() }), /source broke/);
    await sleep(100);
    assert.equal(ended, 0, 'the server must not see the body end');
  } finally {
    await client.close();
    await peer.close();
  }
});

test('client: a response body is read piece by piece as it arrives', async () => {
  const peer = await httpServer(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    for (let i = 0; i < 5; i++) {
      res.write(`line ${i}\n`);
      await sleep(20);
    }
    res.end();
  });
  const client = new Client();
  try {
    const response = await client.get(peer.url);
    const pieces = [];
    for await (const piece of response) pieces.push(new TextDecoder().decode(piece));
    assert.ok(pieces.length >= 2, `streamed in ${pieces.length} pieces`);
    assert.equal(pieces.join(''), 'line 0\nline 1\nline 2\nline 3\nline 4\n');
    await assert.rejects(response.text(), { code: 'BODY_USED' });
  } finally {
    await client.close();
    await peer.close();
  }
});

test('client: a body that ends early is an error, never a shorter success', async () => {
  const peer = await tcpServer((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b');
      setTimeout(() => socket.destroy(), 20);
    });
  });
  const chunked = await tcpServer((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setTimeout(() => socket.end(), 20);
    });
  });
  const client = new Client();
  try {
    const response = await client.get(peer.url);
    await assert.rejects(response.text(), (e) => e instanceof tether.TetherError && ['CONNECTION', 'PROTOCOL'].includes(e.code));
    const second = await client.get(chunked.url);
    await assert.rejects(second.text(), (e) => e instanceof tether.TetherError && ['CONNECTION', 'PROTOCOL'].includes(e.code));
  } finally {
    await client.close();
    await peer.close();
    await chunked.close();
  }
});

test('client: a server that breaks HTTP/1.1 gets a ProtocolError', async () => {
  const peer = await tcpServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!'));
  });
  const garbage = await tcpServer((socket) => {
    socket.once('data', () => socket.end('this is not http\r\n\r\n'));
  });
  const client = new Client();
  try {
    await assert.rejects(client.get(peer.url), tether.ProtocolError);
    await assert.rejects(client.get(garbage.url), tether.ProtocolError);
  } finally {
    await client.close();
    await peer.close();
    await garbage.close();
  }
});

test('client: the four timeouts fail with their own classes', async () => {
  const silent = await tcpServer(() => {});
  const client = new Client({ limit: 1, timeout: { total: null } });
  try {
    await assert.rejects(client.get(silent.url, { timeout: { sockRead: 150 } }), tether.SockReadTimeoutError);
    await assert.rejects(client.get(silent.url, { timeout: { total: 150 } }), tether.TotalTimeoutError);
    // The only connection is held by a request that hangs: the next one waits in the pool.
    const hanging = client.get(silent.url, { timeout: { total: 2000 } });
    hanging.catch(() => {});
    await sleep(50);
    const started = performance.now();
    await assert.rejects(client.get(silent.url, { timeout: { connect: 150 } }), tether.ConnectTimeoutError);
    assert.ok(performance.now() - started < 1500);
    await assert.rejects(hanging, tether.TotalTimeoutError);
    assert.equal(client.poolStats(silent.url).inUse, 0);
    assert.ok(new tether.SockConnectTimeoutError('x', 'SOCK_CONNECT_TIMEOUT') instanceof tether.TimeoutError);
  } finally {
    await client.close();
    await silent.close();
  }
});

test('client: pool limits per host hold under concurrency', async () => {
  let active = 0;
  let most = 0;
  const peer = await httpServer(async (req, res) => {
    active += 1;
    most = Math.max(most, active);
    await sleep(30);
    active -= 1;
    res.end('ok');
  });
  const client = new Client({ limitPerHost: 2 });
  try {
    const bodies = await Promise.all(Array.from({ length: 8 }, async () => (await client.get(peer.url)).text()));
    assert.deepEqual(bodies, Array(8).fill('ok'));
    assert.ok(most <= 2, `at most 2 at once, saw ${most}`);
    assert.ok(peer.connections <= 2, `${peer.connections} connections`);
  } finally {
    await client.close();
    await peer.close();
  }
});

test('client: redirects are followed, capped, or returned when manual', async () => {
  const peer = await httpServer((req, res) => {
    const n = Number(new URL(req.url, 'http://x').searchParams.get('n') ?? 0);
    if (req.url.startsWith('/loop')) {
      res.writeHead(302, { location: '/loop' });
      return res.end();
    }
    if (n > 0) {
      res.writeHead(302, { location: `/?n=${n - 1}` });
      return res.end();
    }
    res.end('arrived');
  });
  const client = new Client({ maxRedirects: 5 });
  try {
    assert.equal(await (await client.get(`${peer.url}/?n=3`)).text(), 'arrived');
    await assert.rejects(client.get(`${peer.url}/loop`), tether.TooManyRedirectsError);
    const manual = await client.get(`${peer.url}/?n=1`, { redirect: 'manual' });
    assert.equal(manual.status, 302);
    assert.equal(manual.headers.get('location'), '/?n=0');
    manual.release();
  } finally {
    await client.close();
    await peer.close();
  }
});

test('client: an AbortSignal drops the request and leaks no pool slot', async () => {
  const silent = await tcpServer(() => {});
  const client = new Client();
  try {
    const controller = new AbortController();
    const pending = client.get(silent.url, { signal: controller.signal });
    await sleep(50);
    controller.abort();
    await assert.rejects(pending, tether.AbortError);
    await sleep(20);
    const stats = client.poolStats(silent.url);
    assert.equal(stats.inUse + stats.opening + stats.waiting, 0, JSON.stringify(stats));
    await assert.rejects(client.get(silent.url, { signal: AbortSignal.abort() }), tether.AbortError);
  } finally {
    await client.close();
    await silent.close();
  }
});

test('client: connection and DNS failures, bad input and a closed client are typed', async () => {
  const closed = await tcpServer(() => {});
  const port = closed.port;
  await closed.close();
  const client = new Client();
  await assert.rejects(client.get(`http://127.0.0.1:${port}/`), tether.ConnectError);
  await assert.rejects(client.get('http://no-such-host.invalid/'), (e) => e instanceof tether.DnsError || e instanceof tether.ConnectError);
  await assert.rejects(client.get('ftp://example.com/'), tether.InvalidInputError);
  await assert.rejects(client.get('http://127.0.0.1:1/', { headers: { 'bad header': 'x' } }), tether.InvalidInputError);
  assert.throws(() => new Client({ timeout: { total: -1 } }), tether.InvalidInputError);
  await client.close();
  await assert.rejects(client.get('http://127.0.0.1:1/'), tether.ClosedError);
});

test('client: TLS from the host (https and wss), trusting a CA given to the client', async () => {
  const { ca, key, cert } = await testCertificates();
  const server = https.createServer({ key, cert }, (req, res) => res.end(`secure ${req.url}`));
  const { WebSocketServer } = wsPackage();
  const sockets = new WebSocketServer({ server });
  sockets.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const client = new Client({ tls: { ca } });
  const stranger = new Client();
  try {
    const response = await client.get(`https://localhost:${port}/over-tls`);
    assert.equal(await response.text(), 'secure /over-tls');
    const socket = await client.ws(`wss://localhost:${port}/`);
    await socket.send('through TLS');
    assert.equal((await socket.receive()).data, 'through TLS');
    await socket.close();
    // Without the CA, the host's TLS refuses the certificate: a typed connect error.
    await assert.rejects(stranger.get(`https://localhost:${port}/`), tether.ConnectError);
  } finally {
    await client.close();
    await stranger.close();
    sockets.close();
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('client: against the tokio demo (hello, echo, stream)', async () => {
  const demo = await tokioDemo();
  if (!demo) return;
  const client = new Client();
  try {
    assert.equal(await (await client.get(`${demo.url}/`)).text(), 'Hello, World!');
    const echoed = await client.post(`${demo.url}/echo`, { body: new Uint8Array(100_000).fill(7) });
    assert.equal((await echoed.bytes()).byteLength, 100_000);
    const lines = await (await client.get(`${demo.url}/stream?n=100`)).text();
    assert.equal(lines.split('\n').length, 101);
  } finally {
    await client.close();
    await demo.close();
  }
});

test('client: nothing is left running once the clients are closed', async () => {
  await sleep(50);
  const stats = tether.stats();
  assert.equal(stats.operations, 0, JSON.stringify(stats));
  assert.equal(stats.websockets, 0, JSON.stringify(stats));
  assert.equal(stats.pending, 0, JSON.stringify(stats));
});
