// A Worker that drives the package's client from inside workerd, one scenario per path.
// The upstream server is named by the request's query (`?url=`, `ws://` for /ws), so one
// config serves any port the test picked; `?total=` sets the client's total timeout (ms)
// and `?stall=` the one of /timeout's request. Every answer is JSON: what the client saw, or the
// error it threw (`{ error: { name, code, message } }`), with the module's counters after.
//
// Each request makes its own Client and closes it before answering: workerd ties sockets to
// the request that opened them, so a pooled connection must not outlive its request.
// performance.now() (and Date.now()) in workerd advance only across IO; the host reads the
// clock when it runs the module, which is always after IO or a timer, so deadlines hold.

import { Client, stats } from './pkg/workerd.js';

const encoder = new TextEncoder();

/** What a thrown error says, for the JSON answer. */
function describe(error) {
  return { name: error?.name, code: error?.code, message: String(error?.message ?? error) };
}

/** The headers the test asserts on, as a plain object. */
function picked(headers) {
  const out = {};
  for (const name of ['content-type', 'content-length', 'transfer-encoding', 'x-peer']) {
    const value = headers.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}

async function summary(response) {
  return { status: response.status, ok: response.ok, headers: picked(response.headers), body: await response.text() };
}

/** A request body of `count` pieces handed out one at a time (sent chunked). */
function pieces(count, size) {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent === count) return controller.close();
      controller.enqueue(encoder.encode(String.fromCharCode(97 + (sent % 26)).repeat(size)));
      sent += 1;
    },
  });
}

const scenarios = {
  // GET, body read whole.
  async get(client, url) {
    return summary(await client.get(url));
  },

  // POST with a JSON body, then a text body on the same (kept-alive) connection.
  async post(client, url) {
    const json = await summary(await client.post(url, { json: { from: 'workerd', n: 42 } }));
    const text = await summary(await client.post(url, { body: 'plain text', headers: { 'x-test': 'two' } }));
    return { json, text, pool: client.poolStats(url) };
  },

  // A streamed (chunked) upload, and the response read piece by piece.
  async stream(client, url) {
    const response = await client.post(url, { body: pieces(16, 4096) });
    const seen = [];
    for await (const piece of response) seen.push(piece);
    const received = seen.reduce((sum, piece) => sum + piece.byteLength, 0);
    // A small body (an echo of what the server got) comes back as text.
    const body = received <= 4096 ? new TextDecoder().decode(await new Blob(seen).arrayBuffer()) : null;
    return { status: response.status, headers: picked(response.headers), received, chunks: seen.length, body };
  },

  // A redirect the module follows.
  async redirect(client, url) {
    const response = await client.get(url);
    return summary(response);
  },

  // A server that never answers: only the module's timer (the host's one setTimeout) ends it.
  async timeout(client, url, query) {
    const started = Date.now();
    try {
      await client.get(url, { timeout: { total: Number(query.get('stall') ?? 300) } });
      return { error: null };
    } catch (error) {
      return { error: describe(error), elapsed: Date.now() - started };
    }
  },

  // Nobody listens there: how workerd's connect() failure reaches the caller.
  async refused(client, url) {
    try {
      await client.get(url);
      return { error: null };
    } catch (error) {
      return { error: describe(error) };
    }
  },

  // A WebSocket: a text and a binary message echoed, then the close handshake.
  async ws(client, url) {
    const ws = await client.ws(url, { protocols: ['echo'] });
    await ws.send('hello from workerd');
    const text = await ws.receive();
    await ws.send(new Uint8Array([1, 2, 3, 250]));
    const binary = await ws.receive();
    const closed = await ws.close(1000, 'done');
    return {
      protocol: ws.protocol ?? null,
      text,
      binary: { type: binary.type, data: [...binary.data] },
      closed,
    };
  },
};

export default {
  async fetch(request) {
    const { pathname, searchParams } = new URL(request.url);
    const name = pathname.slice(1);
    if (name === 'ping') return new Response('pong');
    if (name === 'stats') return Response.json({ stats: stats() });
    const scenario = scenarios[name];
    if (!scenario) return new Response(`no scenario ${name}`, { status: 404 });
    const client = new Client({ timeout: { total: Number(searchParams.get('total') ?? 10_000) } });
    let result;
    try {
      result = await scenario(client, searchParams.get('url'), searchParams);
    } catch (error) {
      result = { error: describe(error), unexpected: true };
    } finally {
      await client.close();
    }
    return Response.json({ result, stats: stats() }, { status: result?.unexpected ? 500 : 200 });
  },
};
