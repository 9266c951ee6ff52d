// Bun's own sockets (`Bun.connect`, `Bun.listen`): the transport interface of
// transports/node.js over Bun's TCP and TLS sockets. Bun's `write` may take only part of
// the bytes (it returns how many): the rest waits here, in order, until Bun says `drain`.

class BunTransport {
  constructor() {
    this.socket = null;
    this.handlers = null;
    /** Bytes Bun has not taken yet, in order. */
    this.backlog = [];
    this.endWhenWritten = false;
    this.ended = false;
    this.done = false;
  }

  attach(socket) {
    this.socket = socket;
    socket.setNoDelay?.(true);
  }

  write(bytes) {
    if (this.backlog.length > 0) {
      this.backlog.push(bytes);
      return false;
    }
    const taken = this.socket.write(bytes);
    if (taken >= bytes.byteLength) return true;
    this.backlog.push(taken > 0 ? bytes.subarray(taken) : bytes);
    return false;
  }

  /** Bun has room again: write what waits; `true` once all of it is taken. */
  drained() {
    while (this.backlog.length > 0) {
      const bytes = this.backlog[0];
      const taken = this.socket.write(bytes);
      if (taken < bytes.byteLength) {
        this.backlog[0] = taken > 0 ? bytes.subarray(taken) : bytes;
        return false;
      }
      this.backlog.shift();
    }
    if (this.endWhenWritten) {
      this.endWhenWritten = false;
      this.socket.end();
    }
    return true;
  }

  end() {
    if (this.ended) return;
    this.ended = true;
    if (this.backlog.length > 0) this.endWhenWritten = true;
    else this.socket.end();
  }

  close() {
    // An ended socket closes once its bytes are out and the peer is done; the rest now.
    if (!this.ended) this.destroy();
  }

  destroy() {
    if (this.done) return;
    this.done = true;
    this.backlog = [];
    this.socket?.terminate();
  }

  pause() {
    this.socket.pause();
  }

  resume() {
    this.socket.resume();
  }

  listen(handlers) {
    this.handlers = handlers;
  }
}

/** The socket handlers Bun calls, shared by every socket: each carries its transport. */
const events = {
  data(socket, bytes) {
    socket.data?.handlers?.data(bytes);
  },
  drain(socket) {
    const transport = socket.data;
    if (transport?.drained()) transport.handlers?.drain();
  },
  end(socket) {
    socket.data?.handlers?.end();
  },
  close(socket, error) {
    const transport = socket.data;
    if (!transport || transport.done) return;
    transport.done = true;
    if (error) transport.handlers?.error(error);
    else transport.handlers?.end();
  },
  error(socket, error) {
    socket.data?.handlers?.error(error);
  },
};

export async function connect({ host, port, tls, tlsOptions }) {
  const transport = new BunTransport();
  let failure = null;
  try {
    const socket = await Bun.connect({
      hostname: host,
      port,
      tls: tls ? { serverName: host, rejectUnauthorized: true, ...tlsOptions } : undefined,
      data: transport,
      socket: {
        ...events,
        open(socket) {
          transport.attach(socket);
        },
        handshake(socket, success, authorizationError) {
          if (!success || authorizationError) {
            failure = authorizationError ?? new Error('TLS handshake failed');
            socket.terminate();
          }
        },
        connectError(socket, error) {
          failure = error;
        },
      },
    });
    if (tls) {
      // Wait for the handshake's verdict before the connection counts as open.
      for (let i = 0; i < 1000 && failure === null && !socket.authorized && socket.readyState !== 'closed'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      if (failure === null && !socket.authorized) failure = new Error('TLS handshake failed');
    }
    if (failure !== null) throw failure;
    transport.attach(socket);
    return transport;
  } catch (error) {
    if (tls && error?.code !== 'ECONNREFUSED') error.tls = true;
    throw error;
  }
}

export async function listen({ host = '127.0.0.1', port = 0 }, accept) {
  const server = Bun.listen({
    hostname: host,
    port,
    socket: {
      ...events,
      open(socket) {
        const transport = new BunTransport();
        transport.attach(socket);
        socket.data = transport;
        accept(transport, `${socket.remoteAddress}:${socket.remotePort ?? 0}`);
      },
    },
  });
  return {
    port: server.port,
    host: server.hostname,
    close: async () => server.stop(false),
  };
}
