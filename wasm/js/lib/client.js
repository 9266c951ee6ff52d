// `Client`: a pooled keep-alive HTTP/1.1 client whose every decision (the pool, the four
// timeouts, redirects, framing) is made by the module; and its `Response`.

import { getHost } from './index.js';
import { ClosedError, InvalidInputError } from './errors.js';
import { BodyReader, flatHeaders, hasHeader, isStream, pieces, toBytes, toHeaders } from './body.js';
import { WebSocket, wsSettings } from './websocket.js';

const EMPTY = new Uint8Array();

/** Milliseconds, or null (off), from a user's value. */
function ms(value) {
  if (value === null || value === Infinity) return null;
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value >= 0)) throw new InvalidInputError(`a timeout must be milliseconds or null, not ${value}`, 'INVALID_SETTINGS');
  return value;
}

function timeoutSettings(timeout) {
  if (!timeout) return undefined;
  const out = {};
  for (const [key, value] of Object.entries(timeout)) out[key] = ms(value);
  return out;
}

/** Settings for the module, from the options of `new Client(options)`. */
function clientSettings(options) {
  const { timeout, limit, limitPerHost, keepAliveTimeout, maxRedirects, maxBodySize, userAgent, websocket } = options;
  const settings = { timeout: timeoutSettings(timeout), limit, limitPerHost, keepAliveTimeout: ms(keepAliveTimeout), maxRedirects, maxBodySize, userAgent, websocket: wsSettings(websocket) };
  return JSON.stringify(settings);
}

// Responses dropped unread release their connection.
const unread = new FinalizationRegistry(({ host, generation, id }) => {
  if (host.generation === generation) {
    try {
      host.call((g) => g.response_drop(id));
      host.schedule();
    } catch {}
  }
});

export class Client {
  /**
   * @param {object} [options]
   * @param {object} [options.timeout] `{ total, connect, sockConnect, sockRead }` in ms
   *   (null: off). Defaults as aiohttp: total 300 000, the others off.
   * @param {number|null} [options.limit] connections in all (default 100; null: no limit)
   * @param {number|null} [options.limitPerHost] connections per origin (default: no limit)
   * @param {number|null} [options.keepAliveTimeout] idle connection expiry, ms (15 000)
   * @param {number} [options.maxRedirects] redirects followed (10; 0: none)
   * @param {number} [options.maxBodySize] largest body `arrayBuffer()`/`text()` collect
   * @param {string} [options.userAgent]
   * @param {object} [options.websocket] `{ heartbeat, pongTimeout, maxMessageSize, compress }`
   * @param {object} [options.tls] the host's TLS settings for https/wss: `{ ca }` (PEM roots
   *   to trust besides the system's; Node and Bun also take any `tls.connect` option)
   */
  constructor(options = {}) {
    this.host = getHost();
    this.settings = clientSettings(options);
    this.tlsOptions = options.tls;
    this.generation = -1;
    this.id = 0;
    this.closed = false;
    this.handle();
  }

  /** The module's handle, made anew if the instance was replaced. */
  handle() {
    if (this.closed) throw new ClosedError('the client is closed', 'CLIENT_CLOSED');
    if (this.generation !== this.host.generation) {
      this.id = this.host.call((g) => g.client_new(this.settings));
      this.generation = this.host.generation;
      if (this.tlsOptions) this.host.tls.set(this.id, this.tlsOptions);
    }
    return this.id;
  }

  /**
   * Sends a request. `init`: `{ method, headers, body, json, timeout, redirect, signal }`;
   * `body` is a string, bytes, URLSearchParams, or an (async) iterable / ReadableStream of
   * pieces (sent chunked, one piece at a time: backpressure).
   * @returns {Promise<Response>}
   */
  async request(url, init = {}) {
    const host = this.host;
    const client = this.handle();
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = flatHeaders(init.headers);
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      if (!hasHeader(headers, 'content-type')) headers.push('content-type', 'application/json');
    } else if (typeof body === 'string') {
      if (!hasHeader(headers, 'content-type')) headers.push('content-type', 'text/plain; charset=utf-8');
    } else if (body instanceof URLSearchParams) {
      if (!hasHeader(headers, 'content-type')) headers.push('content-type', 'application/x-www-form-urlencoded');
      body = body.toString();
    }
    const streamed = isStream(body);
    const kind = body == null ? 0 : streamed ? 2 : 1;
    const bytes = kind === 1 ? toBytes(body) : EMPTY;
    const timeouts = init.timeout ? JSON.stringify(timeoutSettings(init.timeout)) : '';
    const follow = init.redirect !== 'manual';
    let upload = 0;
    const signal = init.signal;
    const generation = host.generation;
    const response = host.op(
      (g, op) => {
        upload = g.client_request(client, op, method, String(url), headers, timeouts, follow, kind, bytes);
      },
      { signal },
    );
    if (!streamed) return new Response(host, generation, await response, signal);
    this.upload(upload, body, response.op);
    return new Response(host, generation, await response, signal);
  }

  async upload(upload, body, requestOp) {
    const host = this.host;
    try {
      for await (const piece of pieces(body)) {
        const bytes = toBytes(piece);
        if (bytes.byteLength === 0) continue;
        await host.op((g, op) => g.upload_write(upload, op, bytes));
      }
      host.input((g) => g.upload_end(upload));
    } catch (error) {
      // The request no longer takes its body: its own result says why.
      if (error?.code === 'REQUEST_CLOSED' || error?.code === 'PANIC') return;
      // The source failed: the request is dropped (its connection with it), never sent
      // as if the body were complete, and fails with the source's error.
      host.cancel(requestOp, error);
    }
  }

  /** `GET url`. */
  get(url, init = {}) {
    return this.request(url, { ...init, method: 'GET' });
  }

  /** `POST url`. */
  post(url, init = {}) {
    return this.request(url, { ...init, method: 'POST' });
  }

  /** `PUT url`. */
  put(url, init = {}) {
    return this.request(url, { ...init, method: 'PUT' });
  }

  /** `DELETE url`. */
  delete(url, init = {}) {
    return this.request(url, { ...init, method: 'DELETE' });
  }

  /**
   * Opens a WebSocket (`ws://` or `wss://`). `options`: `{ protocols, headers, signal }`;
   * heartbeat and compression come from the client's `websocket` settings.
   * @returns {Promise<WebSocket>}
   */
  async ws(url, options = {}) {
    const client = this.handle();
    const protocols = options.protocols ? [].concat(options.protocols).map(String) : [];
    const headers = flatHeaders(options.headers);
    const generation = this.host.generation;
    const event = await this.host.op((g, op) => g.client_ws_connect(client, op, String(url), protocols, headers), { signal: options.signal });
    return new WebSocket(this.host, generation, event);
  }

  /** Pool counts for the origin of `url`: `{ idle, inUse, opening, waiting }`. */
  poolStats(url) {
    const stats = this.host.call((g) => g.client_pool_stats(this.handle(), String(url)));
    if (!stats) return undefined;
    const [idle, inUse, opening, waiting] = stats;
    return { idle, inUse, opening, waiting };
  }

  /** Closes idle connections and refuses new requests; responses being read finish. */
  async close() {
    if (this.closed) return;
    const id = this.handle();
    this.closed = true;
    this.host.tls.delete(id);
    if (this.generation !== this.host.generation) return;
    await this.host.op((g, op) => g.client_close(id, op));
  }
}

/** A response: status and headers at once, the body read on demand (once). */
export class Response extends BodyReader {
  constructor(host, generation, event, signal) {
    super();
    this.host = host;
    this.generation = generation;
    this.id = event.id;
    this.signal = signal;
    /** @type {number} */
    this.status = event.status;
    this.rawHeaders = event.headers;
    this.parsedHeaders = null;
    /** Whether the body was read (or is being read). */
    this.bodyUsed = false;
    unread.register(this, { host, generation, id: this.id }, this);
  }

  /** @type {Headers} Built on first use. */
  get headers() {
    this.parsedHeaders ??= toHeaders(this.rawHeaders);
    return this.parsedHeaders;
  }

  /** Whether the status is 2xx. */
  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  take() {
    if (this.bodyUsed) throw new InvalidInputError('the body was already read', 'BODY_USED');
    this.bodyUsed = true;
    unread.unregister(this);
  }

  /** The whole body (up to the client's `maxBodySize`); a body that ended early rejects. */
  async bytes() {
    this.take();
    const id = this.id;
    const event = await this.host.op((g, op) => g.response_bytes(id, op), { signal: this.signal });
    return event.data;
  }

  /** The body piece by piece, as it arrives (`Uint8Array`s). */
  async *[Symbol.asyncIterator]() {
    this.take();
    const id = this.id;
    let finished = false;
    try {
      for (;;) {
        const event = await this.host.op((g, op) => g.response_read(id, op), { signal: this.signal });
        if (event.data === null) {
          finished = true;
          return;
        }
        yield event.data;
      }
    } finally {
      if (!finished) this.release();
    }
  }

  /** Gives the response up without reading its body (its connection is closed). */
  release() {
    unread.unregister(this);
    this.bodyUsed = true;
    if (this.host.generation !== this.generation) return;
    this.host.input((g) => g.response_drop(this.id));
  }
}
