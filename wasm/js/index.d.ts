// Types of the package (the same API in Node, Deno, Bun and workerd).

/** Milliseconds, or `null` to turn a timeout off. */
export type Millis = number | null;

/** aiohttp's four client timeouts. */
export interface Timeouts {
  /** The whole request, redirects included (default 300 000). */
  total?: Millis;
  /** Getting a connection, pool wait included (default off). */
  connect?: Millis;
  /** Opening a new connection, TLS included (default off). */
  sockConnect?: Millis;
  /** Silence between response bytes (default off). */
  sockRead?: Millis;
}

/** WebSocket settings (both roles). */
export interface WebSocketOptions {
  /** Interval of pings that detect a dead peer (default 30 000; null: off). */
  heartbeat?: Millis;
  /** How long a ping may wait for its pong (default: the heartbeat). */
  pongTimeout?: Millis;
  /** Close (1001) after this long without input (default off). */
  idleTimeout?: Millis;
  /** Largest message accepted (1009 beyond). */
  maxMessageSize?: number;
  /** Largest frame accepted (1009 beyond). */
  maxFrameSize?: number;
  /**
   * permessage-deflate: offered by the client, accepted by the server (`true`), off
   * (`false`), or on with these parameters.
   */
  compress?: boolean | CompressOptions;
}

/**
 * permessage-deflate's parameters (RFC 7692); a missing field keeps the default. Client: what
 * to offer. Server: flags imposed on every connection, the largest window it compresses with,
 * and the window it asks a client to compress with.
 */
export interface CompressOptions {
  /** The server resets its compression context after each message (default false). */
  serverNoContextTakeover?: boolean;
  /** The client resets its compression context after each message (default false). */
  clientNoContextTakeover?: boolean;
  /** Base-2 logarithm of the server's largest window, 9..15 (8 may be asked of a server; default 15). */
  serverMaxWindowBits?: number;
  /**
   * Base-2 logarithm of the client's largest window, 9..15. Client: 15 (the default) offers the
   * parameter without a value, `null` does not offer it.
   */
  clientMaxWindowBits?: number | null;
  /** Compression level 0..9 (default 6). */
  level?: number;
  /** Messages shorter than this many bytes are sent uncompressed (default 64). */
  minSize?: number;
}

export interface ClientOptions {
  timeout?: Timeouts;
  /** Connections in all (default 100; null: no limit). */
  limit?: number | null;
  /** Connections per origin (default: no limit). */
  limitPerHost?: number | null;
  /** Idle connections close after this long (default 15 000). */
  keepAliveTimeout?: Millis;
  /** Redirects followed (default 10; 0: none). */
  maxRedirects?: number;
  /** Largest body `bytes()`/`text()`/`json()` collect (default 64 MiB). */
  maxBodySize?: number;
  userAgent?: string;
  websocket?: WebSocketOptions;
  /**
   * The host's TLS settings for https/wss: `ca` (PEM roots trusted besides the system's).
   * Node and Bun also take any `tls.connect` option; workerd uses its own roots.
   */
  tls?: { ca?: string | string[] } & Record<string, unknown>;
}

export type HeadersInit = Headers | Record<string, string | string[]> | Array<[string, string]>;
export type BodyPiece = string | Uint8Array | ArrayBuffer | ArrayBufferView;
export type BodyInit =
  | BodyPiece
  | URLSearchParams
  | AsyncIterable<BodyPiece>
  | Iterable<BodyPiece>
  | ReadableStream<Uint8Array>;

export interface RequestInit {
  method?: string;
  headers?: HeadersInit;
  /** Sent with Content-Length; an iterable or stream is sent chunked, one piece at a time. */
  body?: BodyInit | null;
  /** A JSON body (`application/json`). */
  json?: unknown;
  /** Overrides of the client's timeouts for this request. */
  timeout?: Timeouts;
  /** `'manual'` returns redirects instead of following them. */
  redirect?: 'follow' | 'manual';
  signal?: AbortSignal;
}

export class Client {
  constructor(options?: ClientOptions);
  request(url: string | URL, init?: RequestInit): Promise<Response>;
  get(url: string | URL, init?: Omit<RequestInit, 'method'>): Promise<Response>;
  post(url: string | URL, init?: Omit<RequestInit, 'method'>): Promise<Response>;
  put(url: string | URL, init?: Omit<RequestInit, 'method'>): Promise<Response>;
  delete(url: string | URL, init?: Omit<RequestInit, 'method'>): Promise<Response>;
  /** Opens a WebSocket (`ws://`, `wss://`). */
  ws(url: string | URL, options?: { protocols?: string | string[]; headers?: HeadersInit; signal?: AbortSignal }): Promise<WebSocket>;
  /** Pool counts for the origin of `url`. */
  poolStats(url: string | URL): { idle: number; inUse: number; opening: number; waiting: number } | undefined;
  /** Closes idle connections and refuses new requests. */
  close(): Promise<void>;
}

export class Response implements AsyncIterable<Uint8Array> {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: Headers;
  readonly bodyUsed: boolean;
  /** The whole body; a body that ended early rejects. */
  bytes(): Promise<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
  json(): Promise<any>;
  /** The body piece by piece, as it arrives. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
  /** Gives the response up unread (its connection closes). */
  release(): void;
}

/** How a WebSocket ended. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** Both sides completed the close handshake. */
  clean: boolean;
  how: 'peer' | 'us' | 'protocol-error' | 'ping-timeout' | 'close-timeout' | 'idle-timeout' | 'transport-closed';
}

export type Message = { type: 'text'; data: string } | { type: 'binary'; data: Uint8Array };

export class WebSocket implements AsyncIterable<string | Uint8Array> {
  readonly protocol: string | undefined;
  readonly extensions: string | undefined;
  /** How the connection ended, once it has. */
  readonly closeInfo: CloseInfo | null;
  /** Resolves when the connection is over. */
  readonly closed: Promise<CloseInfo>;
  send(data: string | BodyPiece): Promise<void>;
  ping(payload?: BodyPiece): Promise<void>;
  /** The next message, or `null` once the connection is over. */
  receive(): Promise<Message | null>;
  /** Starts the close handshake and waits for its end. */
  close(code?: number, reason?: string): Promise<CloseInfo>;
  [Symbol.asyncIterator](): AsyncIterator<string | Uint8Array>;
}

export class IncomingRequest implements AsyncIterable<Uint8Array> {
  readonly method: string;
  /** The request target as sent (`/path?query`). */
  readonly url: string;
  readonly headers: Headers;
  /** The client's address, `ip:port`. */
  readonly peer: string | undefined;
  bytes(): Promise<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
  json(): Promise<any>;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
  /** Accepts a WebSocket upgrade; rejects with a HandshakeError after sending a refusal. */
  upgrade(options?: { protocols?: string | string[] }): Promise<WebSocket>;
}

/** What a handler may return. */
export type HandlerResult =
  | globalThis.Response
  | string
  | BodyPiece
  | { status?: number; headers?: HeadersInit; body?: BodyInit | null; json?: unknown }
  | void;

export interface ServerOptions {
  /** The whole request head must arrive within this (default 30 000): slowloris. */
  headTimeout?: Millis;
  /** Idle keep-alive connections close after this (default 75 000). */
  keepAliveTimeout?: Millis;
  /** Silence while a request body is read (default 30 000; 408). */
  bodyTimeout?: Millis;
  /** Largest request body (default 1 MiB; 413). */
  maxBodySize?: number;
  /** Largest request head (431). */
  maxHeadSize?: number;
  maxHeaders?: number;
  maxConnections?: number;
  /** How long `close()` waits for in-flight requests (default 30 000). */
  shutdownTimeout?: number;
  /** Cancel nothing when a client disconnects (default false). */
  cancelOnDisconnect?: boolean;
  websocket?: WebSocketOptions;
  /** Where handler failures go (default: console.error); the client got a 500. */
  onError?: (error: unknown) => void;
}

export class Server {
  constructor(handler: (request: IncomingRequest) => HandlerResult | Promise<HandlerResult>, options?: ServerOptions);
  /** Listens (Node, Deno, Bun); resolves with the bound address. */
  listen(address?: { port?: number; host?: string }): Promise<{ port: number; host: string }>;
  /** Graceful close: in-flight requests finish, WebSockets get 1001. */
  close(): Promise<void>;
}

/** What the module holds now (for leak checks). */
export function stats(): { tasks: number; timers: number; sockets: number; operations: number; websockets: number; hostSockets: number; pending: number };

export class TetherError extends Error {
  readonly code: string;
}
export class TimeoutError extends TetherError {}
export class TotalTimeoutError extends TimeoutError {}
export class ConnectTimeoutError extends TimeoutError {}
export class SockConnectTimeoutError extends TimeoutError {}
export class SockReadTimeoutError extends TimeoutError {}
export class DnsError extends TetherError {}
export class ConnectError extends TetherError {}
export class ConnectionError extends TetherError {}
export class ProtocolError extends TetherError {
  readonly status: number | undefined;
}
export class BodyTooLargeError extends TetherError {}
export class TooManyRedirectsError extends TetherError {}
export class InvalidInputError extends TetherError {}
export class ClosedError extends TetherError {}
export class HandshakeError extends TetherError {
  readonly status: number | undefined;
}
export class WebSocketClosedError extends TetherError {
  readonly closeCode: number | undefined;
}
export class AbortError extends TetherError {}
export class PanicError extends TetherError {}
