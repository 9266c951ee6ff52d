// Deno's sockets: `Deno.connect` / `Deno.connectTls` for the client, `Deno.listen` for the
// server, as Web Streams transports.

import { StreamTransport } from './webstreams.js';

function transport(conn) {
  conn.setNoDelay?.(true);
  return new StreamTransport(conn.readable, conn.writable, () => conn.close());
}

export async function connect({ host, port, tls, tlsOptions }) {
  try {
    // A client's `tls.ca` (PEM) adds roots, as Deno's `caCerts`.
    const caCerts = tlsOptions?.ca === undefined ? undefined : [].concat(tlsOptions.ca).map(String);
    const conn = tls
      ? await Deno.connectTls({ hostname: host, port, alpnProtocols: ['http/1.1'], caCerts })
      : await Deno.connect({ hostname: host, port });
    // Deno's TLS handshake is lazy: finish it here, so a refused certificate is a connect
    // failure (as elsewhere), not an error on the first read.
    if (tls) await conn.handshake();
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
