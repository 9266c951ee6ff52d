// The package's API, the same in every host. Each host's entry file (node.js, deno.js,
// bun.js, workerd.js) loads the module its own way and hands it, with its sockets, to
// `configure`.

import { Host } from './host.js';

let host = null;
let config = null;

/** Called once by the host's entry file. */
export function configure(module, net) {
  config = { module, net };
  host = null;
}

/**
 * The host loop of this package's module instance, made on first use: starting it draws
 * random bytes, which workerd forbids at a Worker's global scope (import time), so it waits
 * for the first client or server, inside a handler.
 */
export function getHost() {
  if (host === null) {
    if (config === null) throw new Error('tether: the package entry did not configure the module');
    host = new Host(config.module, config.net);
  }
  return host;
}

/** What the module holds: tasks, timers, sockets, operations and WebSockets alive. */
export function stats() {
  return getHost().stats();
}

export { Client, Response } from './client.js';
export { WebSocket } from './websocket.js';
export { Server, IncomingRequest } from './server.js';
export * from './errors.js';
export { Replay } from './replay.js';
