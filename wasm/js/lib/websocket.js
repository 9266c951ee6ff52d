// `WebSocket`, both roles: the module runs the connection (heartbeat, limits, the close
// handshake and its timeouts, permessage-deflate); this class sends, receives and closes.

import { InvalidInputError, WebSocketClosedError } from './errors.js';
import { toBytes } from './body.js';

/** The module's WebSocket settings from `{ heartbeat, pongTimeout, idleTimeout, maxMessageSize, maxFrameSize, compress }`. */
export function wsSettings(options) {
  if (!options) return undefined;
  const { heartbeat, pongTimeout, idleTimeout, maxMessageSize, maxFrameSize, compress } = options;
  return { heartbeat, pongTimeout, idleTimeout, maxMessageSize, maxFrameSize, compress };
}

const dropped = new FinalizationRegistry(({ host, generation, id }) => {
  if (host.generation === generation) {
    try {
      host.input((g) => g.ws_drop(id));
    } catch {}
  }
});

/**
 * An open WebSocket. Iterate it (`for await (const message of ws)`) for messages: strings
 * for text, `Uint8Array`s for binary; the loop ends when the connection is over, and
 * `closeInfo` then says how.
 */
export class WebSocket {
  constructor(host, generation, event) {
    this.host = host;
    this.generation = generation;
    this.id = event.id;
    /** The subprotocol the server chose, or undefined. */
    this.protocol = event.protocol ?? undefined;
    /** The extensions in force (server side), or undefined. */
    this.extensions = event.extensions ?? undefined;
    /** How the connection ended (`{ code, reason, clean, how }`), once it has. */
    this.closeInfo = null;
    this.receiving = false;
    /** Messages received in a burst, not yet handed out. */
    this.queue = [];
    let settle;
    /** Resolves with `closeInfo` when the connection is over. */
    this.closed = new Promise((resolve) => (settle = resolve));
    this.settleClosed = settle;
    dropped.register(this, { host, generation, id: this.id }, this);
  }

  finish(closed) {
    if (this.closeInfo) return this.closeInfo;
    this.closeInfo = closed;
    this.settleClosed(closed);
    // Over: the module's handle goes now rather than when this object is collected.
    dropped.unregister(this);
    if (this.host.generation === this.generation) this.host.input((g) => g.ws_drop(this.id));
    return closed;
  }

  check() {
    if (this.closeInfo || this.host.generation !== this.generation) {
      throw new WebSocketClosedError('the WebSocket is closed', 'WS_CLOSED', this.closeInfo?.code);
    }
  }

  /**
   * Sends a message: text for a string, binary for bytes. Resolves once queued (at once
   * when the connection has room; else when it has). A send that fails because the
   * connection ended first is reported by the next one.
   */
  async send(data) {
    this.check();
    const id = this.id;
    const host = this.host;
    if (typeof data === 'string') {
      if (host.call((g) => g.ws_queue_text(id, data))) return host.schedule();
      await host.op((g, op) => g.ws_send_text(id, op, data));
    } else {
      const bytes = toBytes(data);
      if (host.call((g) => g.ws_queue_binary(id, bytes))) return host.schedule();
      await host.op((g, op) => g.ws_send_binary(id, op, bytes));
    }
  }

  /** Sends a ping (at most 125 bytes of payload). */
  async ping(payload = new Uint8Array()) {
    this.check();
    const bytes = toBytes(payload);
    await this.host.op((g, op) => g.ws_ping(this.id, op, bytes));
  }

  /**
   * The next message: `{ type: 'text', data: string }` or `{ type: 'binary', data:
   * Uint8Array }`; `null` once the connection is over.
   */
  async receive() {
    if (this.queue.length > 0) return this.queue.shift();
    if (this.closeInfo) return null;
    if (this.receiving) throw new InvalidInputError('a receive is already waiting on this WebSocket', 'WS_BUSY');
    this.receiving = true;
    try {
      const event = await this.host.op((g, op) => g.ws_recv(this.id, op));
      if (event.type === 'ws-closed') {
        this.finish(event.closed);
        return null;
      }
      for (const message of event.messages) {
        this.queue.push(typeof message.text === 'string' ? { type: 'text', data: message.text } : { type: 'binary', data: message.data });
      }
      return this.queue.shift();
    } finally {
      this.receiving = false;
    }
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const message = await this.receive();
      if (message === null) return;
      yield message.data;
    }
  }

  /**
   * Starts the close handshake with `code` and `reason` and waits for its end (the peer's
   * answer, or the close timeout). Resolves with how the connection ended.
   */
  async close(code = 1000, reason = '') {
    if (this.closeInfo) return this.closeInfo;
    if (this.host.generation !== this.generation) return this.finish({ code: 1006, reason: '', clean: false, how: 'transport-closed' });
    const event = await this.host.op((g, op) => g.ws_close(this.id, op, code, String(reason)));
    return this.finish(event.closed);
  }
}
