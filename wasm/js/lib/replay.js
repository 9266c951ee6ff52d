// Replays of the shared byte-level test vectors (wasm/test/vectors): one state machine of
// the Rust core, driven directly (no sockets, no timers), so that the JS tests can check
// that the module behaves byte for byte like native code. See wasm/src/vectors.rs.

import * as glue from '../tether_wasm.js';
import { getHost } from './index.js';

export class Replay {
  #host;
  #generation;
  #inner;

  /**
   * @param {string} role 'h1-server', 'h1-client', 'ws-server' or 'ws-client'
   * @param {object|string} [config] the scenario's config (an object or its JSON)
   */
  constructor(role, config = {}) {
    // The host instantiates the module: make sure it did before the glue is used.
    this.#host = getHost();
    this.#generation = this.#host.generation;
    const json = typeof config === 'string' ? config : JSON.stringify(config);
    this.#inner = this.#call(() => new glue.Replay(role, json));
  }

  #call(fn) {
    if (this.#host.generation !== this.#generation) {
      throw new Error('tether: this Replay belonged to a WebAssembly instance that failed');
    }
    return this.#host.call(fn);
  }

  /** Bytes received at `nowMs`. */
  input(nowMs, bytes) {
    this.#call(() => this.#inner.input(nowMs, bytes));
  }

  /** The peer closed its sending side. */
  eof() {
    this.#call(() => this.#inner.eof());
  }

  /** The clock reached `nowMs`. */
  timeout(nowMs) {
    this.#call(() => this.#inner.timeout(nowMs));
  }

  /** A command (an object or its JSON) at `nowMs`. */
  action(nowMs, action) {
    const json = typeof action === 'string' ? action : JSON.stringify(action);
    this.#call(() => this.#inner.action(nowMs, json));
  }

  /** The events since the last call (polling at most `max`). */
  events(max) {
    return JSON.parse(this.#call(() => this.#inner.events(max)));
  }

  /** All pending output, handed out at `nowMs`: a Uint8Array. */
  transmit(nowMs) {
    return this.#call(() => this.#inner.transmit(nowMs));
  }

  /** The earliest deadline (ms), or null. */
  nextTimeout() {
    return this.#call(() => this.#inner.next_timeout()) ?? null;
  }

  /** `{ protocol, closed, reusable? }`. */
  state() {
    return JSON.parse(this.#call(() => this.#inner.state()));
  }

  /** Runs a whole vector step and returns its `expect` (what the native generator runs). */
  step(step) {
    const json = typeof step === 'string' ? step : JSON.stringify(step);
    return JSON.parse(this.#call(() => this.#inner.step(json)));
  }

  /** Frees the state machine now (else the garbage collector does). */
  free() {
    if (this.#host.generation === this.#generation) this.#inner.free();
  }
}
