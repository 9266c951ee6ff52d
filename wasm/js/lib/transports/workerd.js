// Cloudflare workerd's outbound sockets (`connect()` from `cloudflare:sockets`), TLS by
// `secureTransport`. Workers cannot listen: no server here.

import { connect as open } from 'cloudflare:sockets';
import { StreamTransport } from './webstreams.js';

/** workerd drops a request's pending timers when the request ends: the host re-arms. */
export const requestScopedTimers = true;

export async function connect({ host, port, tls }) {
  const socket = open({ hostname: host, port }, { secureTransport: tls ? 'on' : 'off', allowHalfOpen: true });
  await socket.opened;
  return new StreamTransport(socket.readable, socket.writable, () => socket.close());
}

export async function listen() {
  throw new Error('workerd cannot accept connections: use a Worker fetch handler');
}
