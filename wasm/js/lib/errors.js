// Every failure is an instance of one of these classes, with a stable `code`; never a bare
// string. The module reports `{ code, message, status }`; `fromModule` picks the class.

/** Base of every error of this package. */
export class TetherError extends Error {
  constructor(message, code, options) {
    super(message, options);
    this.name = new.target.name;
    /** Stable machine-readable kind, e.g. `SOCK_READ_TIMEOUT`. */
    this.code = code;
  }
}

/** One of the client's four timeouts fired (aiohttp's `ClientTimeout`). */
export class TimeoutError extends TetherError {}
/** The whole request took longer than `timeout.total`. */
export class TotalTimeoutError extends TimeoutError {}
/** Getting a connection (pool wait included) took longer than `timeout.connect`. */
export class ConnectTimeoutError extends TimeoutError {}
/** Opening a new connection took longer than `timeout.sockConnect`. */
export class SockConnectTimeoutError extends TimeoutError {}
/** No response bytes arrived for `timeout.sockRead`. */
export class SockReadTimeoutError extends TimeoutError {}
/** The host name did not resolve. */
export class DnsError extends TetherError {}
/** The connection could not be opened (refused, unreachable, TLS handshake failed). */
export class ConnectError extends TetherError {}
/** The connection failed or closed while in use. */
export class ConnectionError extends TetherError {}
/** An error that carries an HTTP status. */
class StatusError extends TetherError {
  constructor(message, code, status) {
    super(message, code);
    /** The status that goes with the error, if any. */
    this.status = status;
  }
}

/** The peer broke HTTP/1.1; `status` is the answer the core gives such input (400, 413...). */
export class ProtocolError extends StatusError {}
/** A response body is larger than the client's `maxBodySize`. */
export class BodyTooLargeError extends TetherError {}
/** More redirects than `maxRedirects`. */
export class TooManyRedirectsError extends TetherError {}
/** Something given by the caller is invalid: a URL, a header, a status, settings. */
export class InvalidInputError extends TetherError {}
/** The client or server was closed. */
export class ClosedError extends TetherError {}
/** The WebSocket handshake failed, or an upgrade was refused (`status`: 400, 426). */
export class HandshakeError extends StatusError {}
/** A WebSocket is closing or closed; `closeCode` is its final code once known. */
export class WebSocketClosedError extends TetherError {
  constructor(message, code, closeCode) {
    super(message, code);
    /** The final close code, if the connection is over. */
    this.closeCode = closeCode;
  }
}
/** The operation was aborted through its `AbortSignal`. */
export class AbortError extends TetherError {
  constructor(message = 'the operation was aborted', reason) {
    super(message, 'ABORTED', reason === undefined ? undefined : { cause: reason });
  }
}
/**
 * The WebAssembly instance failed (a panic inside the module). Everything that instance was
 * doing fails with this error; the package starts a new instance for what comes next.
 */
export class PanicError extends TetherError {}

const CLASSES = {
  TOTAL_TIMEOUT: TotalTimeoutError,
  CONNECT_TIMEOUT: ConnectTimeoutError,
  SOCK_CONNECT_TIMEOUT: SockConnectTimeoutError,
  SOCK_READ_TIMEOUT: SockReadTimeoutError,
  TIMEOUT: TimeoutError,
  DNS: DnsError,
  CONNECT: ConnectError,
  TLS: ConnectError,
  CONNECTION: ConnectionError,
  SHUTDOWN: ConnectionError,
  RESPONSE_CLOSED: ConnectionError,
  REQUEST_CLOSED: ConnectionError,
  REQUEST_GONE: ConnectionError,
  BODY_TOO_LARGE: BodyTooLargeError,
  TOO_MANY_REDIRECTS: TooManyRedirectsError,
  INVALID_URL: InvalidInputError,
  INVALID_HEADER: InvalidInputError,
  INVALID_METHOD: InvalidInputError,
  INVALID_STATUS: InvalidInputError,
  INVALID_SETTINGS: InvalidInputError,
  WS_INVALID: InvalidInputError,
  BODY_USED: InvalidInputError,
  WS_BUSY: InvalidInputError,
  CLIENT_CLOSED: ClosedError,
  SERVER_CLOSED: ClosedError,
  WS_HANDSHAKE: HandshakeError,
  WS_UPGRADE_REFUSED: HandshakeError,
  WS_CLOSED: WebSocketClosedError,
  PANIC: PanicError,
};

/** The error class instance for a `{ code, message, status }` from the module. */
export function fromModule(info) {
  const Class = CLASSES[info.code] ?? TetherError;
  if (Class === ProtocolError || Class === HandshakeError || Class === WebSocketClosedError) {
    return new Class(info.message, info.code, info.status);
  }
  if (info.code === 'PROTOCOL') return new ProtocolError(info.message, info.code, info.status);
  return new Class(info.message, info.code);
}

CLASSES.PROTOCOL = ProtocolError;
