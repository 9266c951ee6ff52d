// The host side of the module: it owns the sockets, the one timer and the clock, and moves
// bytes. Every protocol decision is the module's.
//
// The boundary is pull-only. Input goes in through plain calls (received bytes, a socket's
// state, an operation to start); then `pump` runs the module's woken tasks and pulls what it
// has for us: socket actions (connect, write, end, close) and events (operation results,
// server requests). Nothing in the module calls back into JavaScript, and promises settled
// here run their callbacks later, as microtasks: nothing re-enters the module.
//
// A trap (a panic inside the module aborts) fails everything of that instance with a
// PanicError and makes a new instance of the same compiled module; clients and servers
// bind themselves to the new instance on their next use.

import * as glue from '../tether_wasm.js';
import { AbortError, PanicError, fromModule } from './errors.js';

/** Runs a function after the host's current IO phase, where the host can (Node, Bun). */
const afterIo = typeof globalThis.setImmediate === 'function' ? globalThis.setImmediate : null;

/** Longest delay `setTimeout` takes (larger ones fire at once). */
const MAX_DELAY = 2 ** 31 - 1;

function entropy() {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

/** A pending operation: the promise's settlers and what to do with its result. */
class Op {
  constructor(resolve, reject, signal, onAbort) {
    this.resolve = resolve;
    this.reject = reject;
    this.signal = signal;
    this.onAbort = onAbort;
  }
}

export class Host {
  /**
   * @param {WebAssembly.Module} module the compiled module (each host compiles or imports it)
   * @param {object} net the host's sockets: `connect({host, port, tls})` returning a
   *   Promise of a transport (see transports/*.js)
   */
  constructor(module, net) {
    this.module = module;
    this.net = net;
    /** Bumped each time a trapped instance is replaced. */
    this.generation = 0;
    this.ops = new Map();
    this.nextOp = 1;
    this.sockets = new Map();
    this.servers = new Map();
    /** TLS settings of each client (its module handle): the host's TLS does the checking. */
    this.tls = new Map();
    this.timer = null;
    this.timerAt = Infinity;
    /** A turn is queued as a microtask / after the current IO phase / after a timeout. */
    this.soon = false;
    this.afterIo = false;
    this.later = false;
    this.soonPump = () => {
      this.soon = false;
      this.pump();
    };
    this.afterIoPump = () => {
      this.afterIo = false;
      this.pump();
    };
    this.laterPump = () => {
      this.later = false;
      this.pump();
    };
    /** Whether the host's timers belong to the request that set them (workerd). */
    this.requestTimers = net.requestScopedTimers === true;
    this.start();
  }

  start() {
    glue.initSync({ module: this.module });
    glue.init(entropy());
  }

  /** Calls into the module; a trap fails this instance and starts a new one. */
  call(fn) {
    try {
      return fn(glue);
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError) {
        this.crash(error);
        throw new PanicError(`the WebAssembly instance failed: ${error.message}`, 'PANIC', {
          cause: error,
        });
      }
      // The module throws `{ code, message }` objects for bad input.
      if (error && typeof error === 'object' && typeof error.code === 'string' && !(error instanceof Error)) {
        throw fromModule(error);
      }
      throw error;
    }
  }

  crash(cause) {
    const generation = this.generation;
    this.generation += 1;
    const error = new PanicError(`the WebAssembly instance failed: ${cause.message}`, 'PANIC', { cause });
    const ops = [...this.ops.values()];
    this.ops.clear();
    const sockets = [...this.sockets.values()];
    this.sockets.clear();
    for (const socket of sockets) socket.transport?.destroy();
    for (const server of this.servers.values()) server.instanceFailed?.(generation);
    this.servers.clear();
    glue.__tether_forget();
    this.start();
    for (const op of ops) op.reject(error);
  }

  /**
   * Starts an operation: `start(glue, op)` makes the call that begins it. Returns a promise
   * of its result event. With `signal`, an abort drops the operation inside the module and
   * rejects with an AbortError.
   */
  op(start, { signal, map } = {}) {
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, signal.reason));
    const id = this.nextOp++;
    if (this.nextOp > 0xffffffff) this.nextOp = 1;
    const promise = new Promise((resolve, reject) => {
      let onAbort;
      if (signal) {
        onAbort = () => {
          if (!this.ops.delete(id)) return;
          try {
            this.call((g) => g.cancel(id));
          } catch {}
          this.schedule();
          reject(new AbortError(undefined, signal.reason));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.ops.set(id, new Op(resolve, reject, signal, onAbort));
    });
    try {
      this.call((g) => start(g, id));
    } catch (error) {
      const op = this.ops.get(id);
      this.ops.delete(id);
      op?.signal?.removeEventListener('abort', op.onAbort);
      return Promise.reject(error);
    }
    this.schedule();
    const result = map ? promise.then(map) : promise;
    result.op = id;
    return result;
  }

  /** Drops operation `id` in the module and rejects its promise with `error`. */
  cancel(id, error) {
    const op = this.ops.get(id);
    if (!op) return;
    this.ops.delete(id);
    op.signal?.removeEventListener('abort', op.onAbort);
    op.reject(error);
    this.input((g) => g.cancel(id));
  }

  /** Runs the module right after the current JS (an operation the application started). */
  schedule() {
    if (this.soon) return;
    this.soon = true;
    queueMicrotask(this.soonPump);
  }

  /**
   * Runs the module once the host's current IO phase is over (Node and Bun: `setImmediate`),
   * so the data of every socket that became readable together goes in before one turn
   * runs; elsewhere, as `schedule`.
   */
  scheduleAfterIo() {
    if (this.soon || this.afterIo) return;
    if (afterIo === null) return this.schedule();
    this.afterIo = true;
    afterIo(this.afterIoPump);
  }

  pump() {
    let turn;
    try {
      turn = this.call((g) => g.turn(performance.now(), Date.now()));
    } catch (error) {
      if (error instanceof PanicError) return;
      throw error;
    }
    // One crossing: the JSON text of the turn, then the byte payloads it refers to.
    const { more, deadline, actions, events } = JSON.parse(turn[0]);
    for (const action of actions) this.act(action, turn);
    for (const event of events) this.deliver(event, turn);
    if (more && !this.later) {
      // Tasks are left: let the host's own IO and timers run first. Where a timer may die
      // with the request that set it (workerd), a lost one must not block the next: the
      // next input schedules a turn anyway.
      if (!this.requestTimers) this.later = true;
      setTimeout(this.laterPump, 0);
    }
    this.arm(deadline);
  }

  arm(at) {
    if (at === undefined) return;
    // One timer: re-armed only when the earliest deadline moves earlier; a timer that fires
    // early (a later deadline than it was armed for) just runs the module, which finds
    // nothing due and asks again. workerd cancels a request's timers when the request ends,
    // so there the timer is armed anew each time, from the request running now.
    if (this.timer !== null && at >= this.timerAt && !this.requestTimers) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const delay = Math.min(Math.max(Math.ceil(at - performance.now()), 0), MAX_DELAY);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.pump();
    }, delay);
    // A timer alone does not keep a Node process alive when nothing waits on us.
    if (this.ops.size === 0) this.timer.unref?.();
  }

  deliver(event, payloads) {
    // Byte payloads travel beside the JSON, by index.
    if (event.d !== undefined) event.data = event.d === null ? null : payloads[1 + event.d];
    if (event.messages) for (const m of event.messages) if (m.d !== undefined) m.data = payloads[1 + m.d];
    if (event.type === 'request') {
      const server = this.servers.get(event.server);
      if (server) server.onRequest(event);
      else this.call((g) => g.server_respond(event.id, 503, [], false, new Uint8Array()));
      return;
    }
    const op = this.ops.get(event.op);
    if (!op) return;
    this.ops.delete(event.op);
    op.signal?.removeEventListener('abort', op.onAbort);
    if (event.type === 'failed') op.reject(fromModule(event.error));
    else op.resolve(event);
  }

  // ---- sockets ----

  act(action, payloads) {
    const id = action.socket;
    switch (action.type) {
      case 'connect':
        return this.connect(id, action);
      case 'write': {
        const socket = this.sockets.get(id);
        if (!socket?.transport) return;
        if (!socket.transport.write(payloads[1 + action.d])) {
          socket.paused = true;
          this.call((g) => g.socket_paused(id, true));
        }
        return;
      }
      case 'end':
        this.sockets.get(id)?.transport?.end();
        return;
      case 'resume':
        this.sockets.get(id)?.transport?.resume();
        return;
      case 'close': {
        const socket = this.sockets.get(id);
        this.sockets.delete(id);
        if (!socket) return;
        socket.closed = true;
        socket.transport?.close();
        return;
      }
    }
  }

  connect(id, { host, port, tls, client }) {
    const socket = { transport: null, paused: false, closed: false };
    this.sockets.set(id, socket);
    const generation = this.generation;
    this.net.connect({ host, port, tls, tlsOptions: this.tls.get(client) }).then(
      (transport) => {
        if (socket.closed || generation !== this.generation) {
          transport.destroy();
          return;
        }
        this.attach(id, socket, transport);
        this.input((g) => g.socket_connected(id));
      },
      (error) => {
        if (socket.closed || generation !== this.generation) return;
        this.sockets.delete(id);
        const kind = error?.code === 'ENOTFOUND' || error?.code === 'EAI_AGAIN' || error?.name === 'NotFound' ? 0 : error?.tls ? 2 : 1;
        this.input((g) => g.socket_connect_failed(id, kind, String(error?.message ?? error)));
      },
    );
  }

  /** A socket the host accepted for server `server`: served by the module from now on. */
  accept(serverId, transport, peer) {
    const id = this.call((g) => g.server_accept(serverId, peer ?? ''));
    const socket = { transport: null, paused: false, closed: false };
    this.sockets.set(id, socket);
    this.attach(id, socket, transport);
    this.schedule();
  }

  attach(id, socket, transport) {
    socket.transport = transport;
    const generation = this.generation;
    const live = () => generation === this.generation && !socket.closed;
    transport.listen({
      data: (bytes) => {
        if (!live()) return;
        let more = true;
        this.socketInput((g) => {
          more = g.socket_data(id, bytes);
        });
        if (!more) transport.pause();
      },
      drain: () => {
        if (!live() || !socket.paused) return;
        socket.paused = false;
        this.input((g) => g.socket_paused(id, false));
      },
      end: () => live() && this.socketInput((g) => g.socket_eof(id)),
      error: (error) => live() && this.input((g) => g.socket_failed(id, String(error?.message ?? error))),
    });
  }

  /** Hands input to the module and runs it soon. */
  input(fn) {
    if (this.feed(fn)) this.schedule();
  }

  /** Hands a socket's input to the module; the turn waits for the rest of this IO phase. */
  socketInput(fn) {
    if (this.feed(fn)) this.scheduleAfterIo();
  }

  /** Calls into the module with input: `false` if the instance failed doing it. */
  feed(fn) {
    try {
      this.call(fn);
      return true;
    } catch (error) {
      if (error instanceof PanicError) return false;
      throw error;
    }
  }

  /** `[tasks, timers, sockets, operations, websockets]` alive in the module. */
  stats() {
    const [tasks, timers, sockets, operations, websockets, polls] = this.call((g) => g.stats());
    return { tasks, timers, sockets, operations, websockets, hostSockets: this.sockets.size, pending: this.ops.size, polls };
  }
}
