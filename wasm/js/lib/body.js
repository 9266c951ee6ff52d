// Bodies as the JS side gives them: strings, bytes, form data, JSON, async iterables and
// Web streams; and header lists in both directions.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * What reads a body whole, on top of a `bytes()` of its own: a client's `Response` and a
 * server's `IncomingRequest`.
 */
export class BodyReader {
  async arrayBuffer() {
    const bytes = await this.bytes();
    return bytes.buffer.byteLength === bytes.byteLength ? bytes.buffer : bytes.slice().buffer;
  }

  async text() {
    return decoder.decode(await this.bytes());
  }

  async json() {
    return JSON.parse(await this.text());
  }
}

/** Bytes of a piece of a body (a string is UTF-8). */
export function toBytes(piece) {
  if (typeof piece === 'string') return encoder.encode(piece);
  if (piece instanceof Uint8Array) return piece;
  if (piece instanceof ArrayBuffer) return new Uint8Array(piece);
  if (ArrayBuffer.isView(piece)) return new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength);
  throw new TypeError(`a body piece must be a string, an ArrayBuffer or a typed array, not ${typeof piece}`);
}

/** Whether `body` is streamed: an async iterable (a ReadableStream is one) or a sync one. */
export function isStream(body) {
  if (body == null || typeof body === 'string' || ArrayBuffer.isView(body) || body instanceof ArrayBuffer) return false;
  return typeof body[Symbol.asyncIterator] === 'function' || typeof body[Symbol.iterator] === 'function' || typeof body.getReader === 'function';
}

/** Iterates a streamed body (ReadableStreams without async iteration included). */
export async function* pieces(body) {
  if (typeof body[Symbol.asyncIterator] === 'function' || typeof body[Symbol.iterator] === 'function') {
    for await (const piece of body) yield piece;
    return;
  }
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** A flat `[name, value, ...]` list from a Headers, a plain object, or pairs. */
export function flatHeaders(headers) {
  const flat = [];
  if (!headers) return flat;
  const entries = typeof headers.entries === 'function' && !Array.isArray(headers) ? headers.entries() : Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [name, value] of entries) {
    if (Array.isArray(value)) for (const v of value) flat.push(String(name), String(v));
    else flat.push(String(name), String(value));
  }
  return flat;
}

/** Whether the flat list names `name`. */
export function hasHeader(flat, name) {
  for (let i = 0; i < flat.length; i += 2) if (flat[i].toLowerCase() === name) return true;
  return false;
}

/** A Headers from the module's flat list. */
export function toHeaders(flat) {
  const headers = new Headers();
  for (let i = 0; i < flat.length; i += 2) headers.append(flat[i], flat[i + 1]);
  return headers;
}
