// Deno's sockets: `Deno.connect` / `Deno.connectTls` for the client, `Deno.listen` for the
// server, as Web Streams transports.

import { StreamTransport } from './webstreams.js';

function transport(conn) {
  conn.setNoDelay?.(true);
  return new StreamTransport(conn.readable, conn.writable, () => conn.close());
}

export async function connect({ host, port, tls }) {
  try {
    const conn = tls
      ? await Deno.connectTls({ hostname: host, port, alpnProtocols: ['http/1.1'] })
      : await Deno.connect({ hostname: host, port });
    return transport(conn);
  } catch (error) {
    if (tls && !(error instanceof Deno.errors.ConnectionRefused) && !(error instanceof Deno.errors.NotFound)) error.tls = true;
    throw error;
  }
}

export async function listen({ host = '127.0.0.1', port = 0 }, accept) {
  const listener = Deno.listen({ hostname: host, port });
  let closing = false;
  (async () => {
    try {
      for await (const conn of listener) {
        const { hostname, port: peerPort } = conn.remoteAddr;
        accept(transport(conn), hostname.includes(':') ? `[${hostname}]:${peerPort}` : `${hostname}:${peerPort}`);
      }
    } catch (error) {
      if (!closing) throw error;
    }
  })();
  return {
    port: listener.addr.port,
    host: listener.addr.hostname,
    close: async () => {
      closing = true;
      listener.close();
    },
  };
}
