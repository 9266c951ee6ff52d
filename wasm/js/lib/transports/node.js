// Sockets of `node:net` and `node:tls` (Node, and Bun's implementation of them): the
// transport interface every host adapter gives the module's host loop:
//   write(bytes) -> false when the socket's buffer is full ('drain' follows)
//   end(), close() (end what was ended, destroy the rest), destroy(), pause(), resume()
//   listen({ data, drain, end, error })

import net from 'node:net';
import tls from 'node:tls';

/** Error codes that mean the TCP connection failed rather than its TLS handshake. */
const TCP_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

export class NodeTransport {
  constructor(socket) {
    this.socket = socket;
    socket.setNoDelay?.(true);
  }

  write(bytes) {
    return this.socket.write(bytes);
  }

  end() {
    this.socket.end();
  }

  close() {
    if (this.socket.writableEnded) this.socket.destroySoon();
    else this.socket.destroy();
  }

  destroy() {
    this.socket.destroy();
  }

  pause() {
    this.socket.pause();
  }

  resume() {
    this.socket.resume();
  }

  listen({ data, drain, end, error }) {
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      end();
    };
    this.socket.on('data', data);
    this.socket.on('drain', drain);
    this.socket.on('end', finish);
    this.socket.on('error', (e) => {
      ended = true;
      error(e);
    });
    this.socket.on('close', finish);
  }
}

/**
 * Opens a connection; TLS (`node:tls`: the system's roots plus a client's `tls.ca`, SNI,
 * hostname checks) for https/wss. `tlsOptions`: the client's `tls` settings.
 */
export function connect({ host, port, tls: secure, tlsOptions }) {
  return new Promise((resolve, reject) => {
    const socket = secure
      ? tls.connect({
          host,
          port,
          servername: net.isIP(host) ? undefined : host,
          ALPNProtocols: ['http/1.1'],
          ...tlsOptions,
        })
      : net.connect({ host, port });
    const failed = (error) => {
      socket.destroy();
      if (secure && !TCP_CODES.has(error.code)) error.tls = true;
      reject(error);
    };
    socket.once('error', failed);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.off('error', failed);
      resolve(new NodeTransport(socket));
    });
  });
}

/** Listens on `port` (0: any free port) at `host`; each connection goes to `accept`. */
export function listen({ host = '127.0.0.1', port = 0 }, accept) {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true }, (socket) => {
      const peer = socket.remoteAddress?.includes(':') ? `[${socket.remoteAddress}]:${socket.remotePort}` : `${socket.remoteAddress}:${socket.remotePort}`;
      accept(new NodeTransport(socket), peer);
    });
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        port: address.port,
        host: address.address,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
