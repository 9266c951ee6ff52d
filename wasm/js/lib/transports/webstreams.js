// Sockets as Web Streams (Deno's `Deno.connect`, workerd's `connect()`): the same transport
// interface as transports/node.js, over a readable and a writable stream.

export class StreamTransport {
  constructor(readable, writable, closeAll) {
    this.reader = readable.getReader();
    this.writer = writable.getWriter();
    this.closeAll = closeAll;
    this.paused = false;
    this.waiting = null;
    this.handlers = null;
    this.done = false;
    this.ended = false;
  }

  write(bytes) {
    // The writer copies nothing: `bytes` is ours (a copy out of the module).
    this.writer.write(bytes).catch((e) => this.fail(e));
    if (this.writer.desiredSize > 0) return true;
    this.writer.ready.then(() => this.handlers?.drain(), () => {});
    return false;
  }

  end() {
    if (this.ended) return;
    this.ended = true;
    this.writer.close().catch(() => {});
  }

  close() {
    if (this.ended) {
      // Let what was written go out, then release the connection.
      this.writer.closed.then(() => this.destroy(), () => this.destroy());
    } else {
      this.destroy();
    }
  }

  destroy() {
    if (this.done) return;
    this.done = true;
    this.reader.cancel().catch(() => {});
    this.writer.abort().catch(() => {});
    try {
      this.closeAll?.();
    } catch {}
  }

  pause() {
    this.paused = true;
  }

  resume() {
    this.paused = false;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  fail(error) {
    if (this.done) return;
    this.handlers?.error(error);
    this.destroy();
  }

  listen(handlers) {
    this.handlers = handlers;
    this.pumpReads();
  }

  async pumpReads() {
    try {
      for (;;) {
        if (this.paused) await new Promise((resume) => (this.waiting = resume));
        const { value, done } = await this.reader.read();
        if (done || this.done) break;
        if (value?.byteLength) this.handlers.data(value);
      }
      if (!this.done) this.handlers.end();
    } catch (error) {
      this.fail(error);
    }
  }
}
