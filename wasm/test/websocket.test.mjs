// WebSockets of both roles against the `ws` package and the tokio demo.
import assert from 'node:assert/strict';
import { test, loadPackage } from './harness.mjs';
import { ws as wsPackage, tcpServer, tokioDemo, sleep } from './peers.mjs';
import { createHash } from 'node:crypto';

const tether = await loadPackage();
const { Client, Server } = tether;
const { WebSocketServer, WebSocket: PeerSocket } = wsPackage();

async function echoServer(options = {}) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket, request) => {
    socket.on('message', (data, binary) => socket.send(data, { binary }));
    socket.protocolSeen = request.headers['sec-websocket-protocol'];
  });
  return { server, url: `ws://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(() => r())) };
}

test('websocket client: echo text and binary with the ws package, subprotocol, clean close', async () => {
  const peer = await echoServer({ handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false) });
  const client = new Client();
  try {
    const socket = await client.ws(peer.url, { protocols: ['chat', 'other'] });
    assert.equal(socket.protocol, 'chat');
    await socket.send('hello');
    assert.deepEqual(await socket.receive(), { type: 'text', data: 'hello' });
    await socket.send(new Uint8Array([1, 2, 3]));
    const binary = await socket.receive();
    assert.equal(binary.type, 'binary');
    assert.deepEqual([...binary.data], [1, 2, 3]);
    const big = 'x'.repeat(200_000);
    await socket.send(big);
    assert.equal((await socket.receive()).data.length, 200_000);
    const closed = await socket.close(1000, 'bye');
    assert.equal(closed.code, 1000);
    assert.equal(closed.clean, true);
    assert.equal(await socket.receive(), null);
    await assert.rejects(socket.send('late'), tether.WebSocketClosedError);
  } finally {
    await client.close();
    await peer.close();
  }
});

test('websocket client: permessage-deflate with the ws package', async () => {
  const peer = await echoServer({ perMessageDeflate: true });
  let extensions;
  peer.server.on('headers', (headers) => (extensions = headers.find((h) => /sec-websocket-extensions/i.test(h))));
  const client = new Client({ websocket: { compress: true } });
  try {
    const socket = await client.ws(peer.url);
    assert.match(extensions ?? '', /permessage-deflate/);
    const text = 'compress me '.repeat(1000);
    await socket.send(text);
    assert.equal((await socket.receive()).data, text);
    await socket.close();
  } finally {
    await client.close();
    await peer.close();
  }
});

test('websocket compression with window sizes: our client offers them to ws; ws offers them to our server', async () => {
  // Text repeating every 3000 bytes: zlib refuses to inflate a reference further back than
  // the negotiated window, so a side compressing with more than agreed would fail here.
  const text = Array.from({ length: 400 }, (_, i) => `line ${i} ✓ `).join('').slice(0, 3000).repeat(30);
  const peer = await echoServer({ perMessageDeflate: { threshold: 0 } });
  let offer;
  peer.server.on('connection', (_socket, request) => (offer = request.headers['sec-websocket-extensions']));
  const client = new Client({
    websocket: { compress: { serverMaxWindowBits: 10, clientMaxWindowBits: 11, clientNoContextTakeover: true, minSize: 0 } },
  });
  try {
    const socket = await client.ws(peer.url);
    assert.equal(offer, 'permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11');
    for (let i = 0; i < 3; i++) {
      await socket.send(text);
      assert.equal((await socket.receive()).data, text);
    }
    await socket.close();
  } finally {
    await client.close();
    await peer.close();
  }

  const server = new Server(
    async (request) => {
      const socket = await request.upgrade().catch(() => null);
      if (!socket) return;
      for await (const message of socket) await socket.send(message);
    },
    { websocket: { compress: { serverMaxWindowBits: 12, clientMaxWindowBits: 9, minSize: 0 } } },
  );
  const { port } = await server.listen();
  try {
    const socket = new PeerSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } });
    let answer;
    socket.once('upgrade', (response) => (answer = response.headers['sec-websocket-extensions']));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    // ws offers client_max_window_bits without a value; our server caps its own window at
    // 2^12 and asks ws for 2^9.
    assert.equal(answer, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=9');
    for (let i = 0; i < 3; i++) {
      const echoed = new Promise((resolve) => socket.once('message', (data) => resolve(data.toString())));
      socket.send(text);
      assert.equal(await echoed, text);
    }
    socket.close(1000);
    await new Promise((resolve) => socket.once('close', resolve));
  } finally {
    await server.close();
  }
});

test('websocket client: iteration ends with the peer close; the reason is kept', async () => {
  const peer = await echoServer();
  peer.server.on('connection', (socket) => {
    socket.send('one');
    socket.send('two');
    setTimeout(() => socket.close(4001, 'done here'), 20);
  });
  const client = new Client();
  try {
    const socket = await client.ws(peer.url);
    const seen = [];
    for await (const message of socket) seen.push(message);
    assert.deepEqual(seen, ['one', 'two']);
    assert.equal(socket.closeInfo.code, 4001);
    assert.equal(socket.closeInfo.reason, 'done here');
    assert.equal(socket.closeInfo.how, 'peer');
    assert.deepEqual(await socket.closed, socket.closeInfo);
  } finally {
    await client.close();
    await peer.close();
  }
});

test('websocket client: the heartbeat detects a dead peer', async () => {
  // Completes the handshake, then never answers anything (no pong).
  const dead = await tcpServer((socket) => {
    socket.once('data', (head) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(head.toString())[1];
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    });
  });
  const client = new Client({ websocket: { heartbeat: 100, pongTimeout: 100 } });
  try {
    const socket = await client.ws(`ws://127.0.0.1:${dead.port}/`);
    const started = performance.now();
    assert.equal(await socket.receive(), null);
    assert.equal(socket.closeInfo.code, 1006);
    assert.equal(socket.closeInfo.how, 'ping-timeout');
    assert.ok(performance.now() - started < 2000);
  } finally {
    await client.close();
    await dead.close();
  }
});

test('websocket client: against the tokio demo', async () => {
  const demo = await tokioDemo();
  if (!demo) return;
  const client = new Client();
  try {
    const socket = await client.ws(`ws://127.0.0.1:${demo.port}/ws`, { protocols: ['chat'] });
    assert.equal(socket.protocol, 'chat');
    for (let i = 0; i < 10; i++) {
      await socket.send(`message ${i}`);
      assert.equal((await socket.receive()).data, `message ${i}`);
    }
    assert.equal((await socket.close()).code, 1000);
  } finally {
    await client.close();
    await demo.close();
  }
});

test('websocket server: the ws package as client; bad frames get 1007 and 1009; close sends 1001', async () => {
  const server = new Server(
    async (request) => {
      if (request.url !== '/ws') return { status: 404 };
      // A request that is not a valid upgrade has been answered (400, 426) already.
      const socket = await request.upgrade({ protocols: ['echo'] }).catch(() => null);
      if (!socket) return;
      for await (const message of socket) await socket.send(message);
    },
    { websocket: { maxMessageSize: 1000 } },
  );
  const { port } = await server.listen();
  const url = `ws://127.0.0.1:${port}/ws`;
  const open = (protocols) =>
    new Promise((resolve, reject) => {
      const socket = new PeerSocket(url, protocols);
      socket.once('open', () => resolve(socket));
      socket.once('error', reject);
    });
  const closeOf = (socket) => new Promise((resolve) => socket.once('close', (code, reason) => resolve([code, reason.toString()])));
  try {
    const socket = await open(['echo']);
    assert.equal(socket.protocol, 'echo');
    const reply = new Promise((resolve) => socket.once('message', (data, binary) => resolve([data.toString(), binary])));
    socket.send('ping?');
    assert.deepEqual(await reply, ['ping?', false]);

    // Every ping gets its own pong, with its payload, in order (a burst of three).
    const pongs = [];
    const threePongs = new Promise((resolve) =>
      socket.on('pong', (data) => {
        pongs.push(data.toString());
        if (pongs.length === 3) resolve();
      }),
    );
    for (const payload of ['a', 'b', 'c']) socket.ping(payload);
    await threePongs;
    assert.deepEqual(pongs, ['a', 'b', 'c']);

    const badUtf8 = await open();
    const badClosed = closeOf(badUtf8);
    badUtf8.send(Buffer.from([0xff, 0xfe]), { binary: false });
    assert.equal((await badClosed)[0], 1007);

    const tooBig = await open();
    const bigClosed = closeOf(tooBig);
    tooBig.send('y'.repeat(5000));
    assert.equal((await bigClosed)[0], 1009);

    const refused = await fetch(`http://127.0.0.1:${port}/ws`);
    assert.equal(refused.status, 400);

    const goingAway = closeOf(socket);
    await server.close();
    assert.equal((await goingAway)[0], 1001);
  } finally {
    await server.close();
  }
});

test('websocket: nothing is left open', async () => {
  await sleep(100);
  const stats = tether.stats();
  assert.equal(stats.websockets, 0, JSON.stringify(stats));
  assert.equal(stats.pending, 0, JSON.stringify(stats));
});
