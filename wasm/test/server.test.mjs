// The package's Server against clients we did not write: curl, undici, raw sockets playing
// broken or slow clients.
import assert from 'node:assert/strict';
import { test, loadPackage } from './harness.mjs';
import { rawExchange, run, undici, sleep } from './peers.mjs';
import net from 'node:net';

const tether = await loadPackage();
const { Server } = tether;

async function serve(handler, options) {
  const server = new Server(handler, { onError: () => {}, ...options });
  const { port } = await server.listen({ port: 0 });
  return { server, port, url: `http://127.0.0.1:${port}` };
}

test('server: curl GET and POST, headers both ways', async () => {
  const { server, url } = await serve(async (request) => {
    if (request.method === 'POST') {
      const body = await request.text();
      return { status: 201, headers: { 'x-length': String(body.length) }, body: `got ${body}` };
    }
    return new Response(`hello ${request.url} from ${request.headers.get('user-agent').split('/')[0]}`, { headers: { 'x-kind': 'fetch-response' } });
  });
  try {
    const get = await run('curl', ['-sS', '-i', `${url}/a/b?c=d`]);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(get.stdout, /x-kind: fetch-response/i);
    assert.match(get.stdout, /date: /i);
    assert.match(get.stdout, /\r\n\r\nhello \/a\/b\?c=d from curl$/);
    const post = await run('curl', ['-sS', '-i', '--data-binary', 'payload', `${url}/`]);
    assert.match(post.stdout, /^HTTP\/1\.1 201 Created\r\n/);
    assert.match(post.stdout, /x-length: 7/i);
    assert.match(post.stdout, /got payload$/);
  } finally {
    await server.close();
  }
});

test('server: undici keep-alive requests, streamed bodies both ways', async () => {
  const { server, url } = await serve(async (request) => {
    if (request.url === '/upload') {
      let pieces = 0;
      let bytes = 0;
      for await (const piece of request) {
        pieces += 1;
        bytes += piece.byteLength;
      }
      return { json: { pieces, bytes } };
    }
    async function* lines() {
      for (let i = 0; i < 20; i++) {
        yield `line ${i}\n`;
        await sleep(2);
      }
    }
    return { headers: { 'content-type': 'text/plain' }, body: lines() };
  });
  const { Pool } = undici();
  const pool = new Pool(url, { connections: 1 });
  try {
    for (let i = 0; i < 3; i++) {
      const { statusCode, headers, body } = await pool.request({ path: '/stream', method: 'GET' });
      assert.equal(statusCode, 200);
      assert.equal(headers['transfer-encoding'], 'chunked');
      assert.equal((await body.text()).split('\n').length, 21);
    }
    async function* upload() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(10_000, i);
    }
    const { statusCode, body } = await pool.request({ path: '/upload', method: 'POST', body: upload() });
    assert.equal(statusCode, 200);
    const result = await body.json();
    assert.equal(result.bytes, 100_000);
    assert.ok(result.pieces >= 1);
  } finally {
    await pool.close();
    await server.close();
  }
});

test('server: a streamed response whose source fails is not a shorter success', async () => {
  const { server, url } = await serve(async () => {
    async function* broken() {
      yield 'partial';
      await sleep(10);
      throw new Error('the source failed');
    }
    return { body: broken() };
  });
  const { request } = undici();
  try {
    const { body } = await request(url);
    await assert.rejects(body.text());
  } finally {
    await server.close();
  }
});

test('server: bad input gets the core answer (400, 431, 413) and the server keeps serving', async () => {
  const { server, port, url } = await serve(async (request) => {
    await request.bytes().catch(() => {});
    return 'fine';
  }, { maxBodySize: 1000, maxHeadSize: 4096 });
  try {
    const smuggled = await rawExchange(port, ['POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n']);
    assert.match(smuggled.text, /^HTTP\/1\.1 400 /);
    const big = await rawExchange(port, [`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(8000)}\r\n\r\n`]);
    assert.match(big.text, /^HTTP\/1\.1 431 /);
    const large = await rawExchange(port, [`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n${'b'.repeat(5000)}`]);
    assert.match(large.text, /^HTTP\/1\.1 413 /);
    const curl = await run('curl', ['-sS', url]);
    assert.equal(curl.stdout, 'fine');
  } finally {
    await server.close();
  }
});

test('server: a slowloris client is cut at the head timeout; idle keep-alive connections close', async () => {
  const { server, port } = await serve(() => 'ok', { headTimeout: 300, keepAliveTimeout: 300 });
  try {
    const slow = await rawExchange(port, ['GET / HTTP/1.1\r\n', 'host: x\r\n'], { delays: [100, 5000] });
    assert.match(slow.text, /^HTTP\/1\.1 408 /);
    assert.ok(slow.ms >= 250 && slow.ms < 3000, `closed after ${slow.ms} ms`);
    const idle = await rawExchange(port, ['GET / HTTP/1.1\r\nhost: x\r\n\r\n']);
    assert.match(idle.text, /^HTTP\/1\.1 200 OK/);
    assert.ok(idle.ms >= 250 && idle.ms < 3000, `idle close after ${idle.ms} ms`);
  } finally {
    await server.close();
  }
});

test('server: a handler that throws answers 500 and the next request is served', async () => {
  const errors = [];
  const server = new Server(
    (request) => {
      if (request.url === '/boom') throw new Error('boom');
      return 'still here';
    },
    { onError: (e) => errors.push(e) },
  );
  const { port } = await server.listen();
  try {
    const boom = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/boom`]);
    assert.equal(boom.stdout, '500');
    assert.equal(errors.length, 1);
    assert.equal((await run('curl', ['-sS', `http://127.0.0.1:${port}/`])).stdout, 'still here');
  } finally {
    await server.close();
  }
});

test('server: graceful close lets in-flight requests finish and refuses new connections', async () => {
  let started;
  const inFlight = new Promise((resolve) => (started = resolve));
  const { server, port, url } = await serve(async () => {
    started();
    await sleep(300);
    return 'finished';
  });
  const { request } = undici();
  const response = request(url).then(async (r) => [r.statusCode, await r.body.text()]);
  await inFlight;
  const closing = server.close();
  await sleep(50);
  const refused = await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(true));
  });
  assert.equal(refused, true);
  assert.deepEqual(await response, [200, 'finished']);
  await closing;
});

test('server: nothing is left running once the servers are closed', async () => {
  await sleep(100);
  const stats = tether.stats();
  assert.equal(stats.operations, 0, JSON.stringify(stats));
  assert.equal(stats.sockets, 0, JSON.stringify(stats));
  assert.equal(stats.pending, 0, JSON.stringify(stats));
});
