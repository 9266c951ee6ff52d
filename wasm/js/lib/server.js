// `Server`: the module serves the connections the host accepts (the core's limits, the
// slowloris and keep-alive deadlines, graceful shutdown); each request goes to the
// handler, and its answer back.

import { getHost } from './index.js';
import { HandshakeError, InvalidInputError } from './errors.js';
import { BodyReader, flatHeaders, hasHeader, isStream, pieces, toBytes, toHeaders } from './body.js';
import { WebSocket, wsSettings } from './websocket.js';

const EMPTY = new Uint8Array();

function serverSettings(options) {
  const { headTimeout, keepAliveTimeout, bodyTimeout, maxBodySize, maxHeadSize, maxHeaders, maxConnections, shutdownTimeout, cancelOnDisconnect, websocket } = options;
  return JSON.stringify({ headTimeout, keepAliveTimeout, bodyTimeout, maxBodySize, maxHeadSize, maxHeaders, maxConnections, shutdownTimeout, cancelOnDisconnect, websocket: wsSettings(websocket) });
}

/** A request as the handler sees it. Its body is read once, whole or piece by piece. */
export class IncomingRequest extends BodyReader {
  constructor(host, event) {
    super();
    this.host = host;
    this.generation = host.generation;
    this.id = event.id;
    /** @type {string} */
    this.method = event.method;
    /** The request target as sent (`/path?query`). */
    this.url = event.target;
    this.rawHeaders = event.headers;
    this.parsedHeaders = null;
    /** The client's address (`ip:port`), when the host knows it. */
    this.peer = event.peer ?? undefined;
    this.bodyUsed = false;
    this.upgraded = false;
    /** The module no longer holds this request (answered whole). */
    this.released = false;
  }

  /** @type {Headers} Built on first use: many handlers never look. */
  get headers() {
    this.parsedHeaders ??= toHeaders(this.rawHeaders);
    return this.parsedHeaders;
  }

  take() {
    if (this.bodyUsed) throw new InvalidInputError('the body was already read', 'BODY_USED');
    this.bodyUsed = true;
  }

  /** The whole body (up to the server's `maxBodySize`; beyond it the client got 413). */
  async bytes() {
    this.take();
    const event = await this.host.op((g, op) => g.request_read(this.id, op, true));
    return event.data;
  }

  /** The body piece by piece (`Uint8Array`s); a body that ends early throws. */
  async *[Symbol.asyncIterator]() {
    this.take();
    for (;;) {
      const event = await this.host.op((g, op) => g.request_read(this.id, op, false));
      if (event.data === null) return;
      yield event.data;
    }
  }

  /**
   * Accepts a WebSocket upgrade (choosing the first of `protocols` the client offers) and
   * resolves with the open WebSocket once the `101` is out. A request that is not a valid
   * upgrade gets its refusal (400, or 426 for the version) and this rejects with a
   * HandshakeError. The handler's own return value is then ignored.
   */
  async upgrade({ protocols = [] } = {}) {
    this.upgraded = true;
    const list = [].concat(protocols).map(String);
    const generation = this.host.generation;
    const event = await this.host.op((g, op) => g.server_accept_websocket(this.id, op, list));
    return new WebSocket(this.host, generation, event);
  }
}

/** Turns what a handler returned into the module's answer; writes a streamed body. */
async function answer(host, request, result) {
  let status = 200;
  let headers = [];
  let body = result;
  if (result instanceof globalThis.Response) {
    status = result.status;
    headers = flatHeaders(result.headers);
    body = result.body;
  } else if (result && typeof result === 'object' && !isStream(result) && !ArrayBuffer.isView(result) && !(result instanceof ArrayBuffer)) {
    status = result.status ?? 200;
    headers = flatHeaders(result.headers);
    body = result.json !== undefined ? JSON.stringify(result.json) : result.body;
    if (result.json !== undefined && !hasHeader(headers, 'content-type')) headers.push('content-type', 'application/json');
  }
  if (typeof body === 'string' && !hasHeader(headers, 'content-type')) headers.push('content-type', 'text/plain; charset=utf-8');
  if (!isStream(body)) {
    const bytes = body == null ? EMPTY : toBytes(body);
    // A whole answer also releases the request in the module (one call, one turn).
    request.released = true;
    host.call((g) => g.server_respond(request.id, status, headers, false, bytes));
    host.schedule();
    return;
  }
  const download = host.call((g) => g.server_respond(request.id, status, headers, true, EMPTY));
  host.schedule();
  try {
    for await (const piece of pieces(body)) {
      const bytes = toBytes(piece);
      if (bytes.byteLength) await host.op((g, op) => g.download_write(download, op, bytes));
    }
    host.input((g) => g.download_end(download));
  } catch (error) {
    // The client is gone (nothing to do), or the source failed: the client must see the
    // body fail, not end short.
    host.input((g) => g.download_abort(download));
    if (error?.code !== 'RESPONSE_CLOSED') throw error;
  }
}

export class Server {
  /**
   * @param {(request: IncomingRequest) => any} handler returns a `Response`, a string,
   *   bytes, `{ status, headers, body | json }` (body: string, bytes, async iterable or
   *   ReadableStream), or nothing (204 is not implied: an empty 200).
   * @param {object} [options] `{ headTimeout, keepAliveTimeout, bodyTimeout, maxBodySize,
   *   maxHeadSize, maxHeaders, maxConnections, shutdownTimeout, cancelOnDisconnect,
   *   websocket: { heartbeat, pongTimeout, maxMessageSize, compress } }` (ms, bytes)
   */
  constructor(handler, options = {}) {
    if (typeof handler !== 'function') throw new TypeError('a Server needs a handler function');
    this.host = getHost();
    this.handler = handler;
    this.settings = serverSettings(options);
    this.onError = options.onError ?? ((error) => console.error('tether: handler failed:', error));
    this.listener = null;
    this.id = 0;
    this.generation = -1;
    this.ready = null;
    this.closing = null;
  }

  /** Starts the module's side (again, after an instance was replaced). */
  begin() {
    if (this.generation === this.host.generation && this.ready) return this.ready;
    const generation = this.host.generation;
    this.generation = generation;
    this.ready = this.host.op((g, op) => g.server_new(op, this.settings)).then((event) => {
      this.id = event.id;
      this.host.servers.set(event.id, this);
      return event.id;
    });
    return this.ready;
  }

  /** Listens (`{ port = 0, host = '127.0.0.1' }`); resolves with `{ port, host }`. */
  async listen(address = {}) {
    await this.begin();
    const net = this.host.net;
    if (typeof net.listen !== 'function') throw new InvalidInputError('this host cannot accept connections', 'SERVER_CLOSED');
    this.listener = await net.listen(address, (transport, peer) => this.accept(transport, peer));
    return { port: this.listener.port, host: this.listener.host };
  }

  accept(transport, peer) {
    if (this.closing) {
      transport.destroy();
      return;
    }
    this.begin().then(
      (id) => this.host.accept(id, transport, peer),
      () => transport.destroy(),
    );
  }

  /** The module's instance failed: the server starts again on the next connection. */
  instanceFailed() {
    this.ready = null;
  }

  async onRequest(event) {
    const host = this.host;
    const request = new IncomingRequest(host, event);
    let result;
    try {
      result = await this.handler(request);
    } catch (error) {
      this.onError(error);
      result = { status: 500, body: 'internal server error' };
    }
    try {
      if (!request.upgraded) await answer(host, request, result);
    } catch (error) {
      if (error?.code !== 'REQUEST_GONE') this.onError(error);
    } finally {
      if (!request.released && host.generation === request.generation) host.input((g) => g.request_drop(request.id));
    }
  }

  /**
   * Graceful close: stop accepting, let in-flight requests finish (up to `shutdownTimeout`,
   * then they are cut), close WebSockets with 1001, then resolve.
   */
  close() {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      // Stop accepting now; the host's listener reports closed once its last connection
      // is, and the module is what ends those.
      const stopped = this.listener?.close?.();
      if (this.ready && this.generation === this.host.generation) {
        const id = await this.ready;
        await this.host.op((g, op) => g.server_close(id, op));
        this.host.servers.delete(id);
      }
      await stopped;
    })();
    return this.closing;
  }
}

export { HandshakeError };
