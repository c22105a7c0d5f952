/**
 * Every error Rhizome throws or reports is an instance of {@link RhizomeError} with a stable
 * `code`. Tell errors apart by `code` (or `instanceof`), never by message text: messages are
 * for people and may change.
 *
 * The list of codes is {@link ERROR_CODES}; ARCHITECTURE.md documents each, and a test keeps
 * the two in step.
 */
export class RhizomeError extends Error {
  /** Stable, machine-readable identifier of the condition, e.g. `ERR_INVALID_TOPIC`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A topic was not a 32-byte Uint8Array, or hex text was not 64 hex digits. */
export class InvalidTopicError extends RhizomeError {
  constructor(message: string) {
    super('ERR_INVALID_TOPIC', message);
  }
}

/** A configuration object had a bad or unknown field; `field` names it. */
export class InvalidConfigError extends RhizomeError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('ERR_INVALID_CONFIG', `${field}: ${message}`);
    this.field = field;
  }
}

/** A function argument was out of its domain (bad node id, non-JSON data, ...). */
export class InvalidArgumentError extends RhizomeError {
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

/** The transport was disconnected; it cannot be used again. */
export class TransportClosedError extends RhizomeError {
  constructor(message = 'transport is disconnected') {
    super('ERR_TRANSPORT_CLOSED', message);
  }
}

/** A Connection was used after it closed (locally or by the remote peer). */
export class ConnectionClosedError extends RhizomeError {
  constructor(message = 'connection is closed') {
    super('ERR_CONNECTION_CLOSED', message);
  }
}

/** A message or frame exceeded a size limit. */
export class FrameTooLargeError extends RhizomeError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number) {
    super('ERR_FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.size = size;
    this.limit = limit;
  }
}

/** A sealed frame failed to open: wrong key (database id or secret), or tampered bytes. */
export class DecryptError extends RhizomeError {
  constructor(message = 'frame failed to open: wrong database secret or tampered data') {
    super('ERR_DECRYPT', message);
  }
}

/** A peer sent bytes that break the wire protocol (bad frame type, truncated frame, bad handshake). */
export class ProtocolError extends RhizomeError {
  constructor(message: string) {
    super('ERR_PROTOCOL', message);
  }
}

/** An operation did not finish within its time bound. */
export class TimeoutError extends RhizomeError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
  }
}

/** An operation was cancelled through its AbortSignal. */
export class AbortError extends RhizomeError {
  constructor(message = 'operation aborted') {
    super('ERR_ABORTED', message);
  }
}

/** A topic was joined twice on one transport. */
export class TopicAlreadyJoinedError extends RhizomeError {
  constructor(topicHex: string) {
    super('ERR_TOPIC_ALREADY_JOINED', `topic ${topicHex} is already joined on this transport`);
  }
}

/** Connecting to a remote endpoint (relay URL, multiaddr) failed; the message names it. */
export class ConnectFailedError extends RhizomeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONNECT_FAILED', message, options);
  }
}

/** The module implementing a transport mode could not be loaded (not installed?). */
export class TransportUnavailableError extends RhizomeError {
  constructor(mode: string, pkg: string, cause: unknown) {
    super(
      'ERR_TRANSPORT_UNAVAILABLE',
      `transport mode '${mode}' needs the package ${pkg}; install it next to @rhizome/core`,
      { cause },
    );
  }
}

/** A database file is not a Rhizome/SQLite file, or is damaged. The file is left untouched. */
export class StoreCorruptError extends RhizomeError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_STORE_CORRUPT', `${path}: ${message}`, options);
    this.path = path;
  }
}

/** A database file was written by a newer Rhizome (schema version above what this one knows). */
export class StoreVersionError extends RhizomeError {
  readonly path: string;
  readonly found: number;
  readonly supported: number;
  constructor(path: string, found: number, supported: number) {
    super(
      'ERR_STORE_VERSION',
      `${path}: schema version ${found} is newer than this Rhizome supports (${supported}); upgrade Rhizome`,
    );
    this.path = path;
    this.found = found;
    this.supported = supported;
  }
}

/**
 * A compaction was refused because the stored snapshot is newer than what it was computed from:
 * another handle of the file (another process) compacted past `throughSeq` meanwhile. Nothing was
 * written; re-read the store and compact again (the persistence binding does this by itself).
 */
export class StoreConflictError extends RhizomeError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_STORE_CONFLICT', `${path}: ${message}`);
    this.path = path;
  }
}

/**
 * The store's file could not be written or read: the disk is full (`reason` `'SQLITE_FULL'`), an
 * I/O error (`'SQLITE_IOERR_*'`), the file stayed locked by another process beyond the busy
 * timeout (`'SQLITE_BUSY'`), ... `reason` is SQLite's extended result code. What was committed
 * before stays committed; a failed write changed nothing, and the persistence binding keeps the
 * updates in memory and retries them.
 */
export class StoreIOError extends RhizomeError {
  readonly path: string;
  readonly reason: string;
  constructor(path: string, reason: string, message: string, options?: { cause?: unknown }) {
    super('ERR_STORE_IO', `${path}: ${message} (${reason})`, options);
    this.path = path;
    this.reason = reason;
  }
}

/**
 * A database file cannot be written: refused at open (file or directory not writable, read-only
 * file system) unless it is opened read-only on purpose, and thrown by writes to a database
 * opened with `readOnly: true`. `path` names the file.
 */
export class StoreReadOnlyError extends RhizomeError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_STORE_READ_ONLY', `${path}: ${message}`, options);
    this.path = path;
  }
}

/**
 * A store cannot be opened or written for a reason outside the data: the host has no IndexedDB,
 * a write transaction failed (quota), another page deleted the database, or (Node) the SQLite
 * driver's native module was built for another Node version. Nothing is lost
 * that was already on disk; writes since the last successful `flush()` may be.
 */
export class StoreUnavailableError extends RhizomeError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_STORE_UNAVAILABLE', `${path}: ${message}`, options);
    this.path = path;
  }
}

/** A store or database was used after `close()`. */
export class ClosedError extends RhizomeError {
  constructor(what: string) {
    super('ERR_CLOSED', `${what} is closed`);
  }
}

/**
 * A relay closed the session with one of its close codes (rate limit, too many topics, bad
 * token, ...). `closeCode` is the WebSocket close code and `closeName` its stable name from
 * `@rhizome/transport-relay/protocol` (`'UNAUTHORIZED'`, `'FRAME_RATE_EXCEEDED'`, ...).
 */
export class RelayRejectedError extends RhizomeError {
  readonly closeCode: number;
  readonly closeName: string;
  readonly url: string;
  constructor(url: string, closeCode: number, closeName: string, reason: string) {
    super('ERR_RELAY_REJECTED', `relay ${url} closed the session: ${closeName} (${closeCode})${reason ? `: ${reason}` : ''}`);
    this.closeCode = closeCode;
    this.closeName = closeName;
    this.url = url;
  }
}

/** A server could not listen on its address (port taken, or a privileged port without permission). */
export class ListenError extends RhizomeError {
  readonly port: number;
  readonly host: string;
  /** The system error code: `'EACCES'`, `'EADDRINUSE'`, ... */
  readonly reason: string;
  constructor(message: string, host: string, port: number, reason: string, options?: { cause?: unknown }) {
    super('ERR_LISTEN', message, options);
    this.port = port;
    this.host = host;
    this.reason = reason;
  }
}

/**
 * A Connection's reader fell too far behind: more unread messages or bytes than the transport's
 * per-Connection bound. That Connection alone is closed (its reader gets this error; the remote
 * sees the pair close), so one unread Connection never stalls the others sharing its socket.
 */
export class SlowConsumerError extends RhizomeError {
  /** Unread messages and bytes when the bound was passed. */
  readonly messages: number;
  readonly bytes: number;
  constructor(message: string, messages: number, bytes: number) {
    super('ERR_SLOW_CONSUMER', message);
    this.messages = messages;
    this.bytes = bytes;
  }
}

/**
 * A mailbox server refused a write because the mailbox is at its byte or entry quota. The
 * writer compacts: a snapshot replaces every earlier record, so it fits again.
 */
export class MailboxFullError extends RhizomeError {
  /** The mailbox server (relay URL). */
  readonly server: string;
  constructor(server: string, message = 'mailbox is full') {
    super('ERR_MAILBOX_FULL', `${server}: ${message}`);
    this.server = server;
  }
}

/**
 * A mailbox server refused a write or a read for another reason than a full mailbox:
 * `statusName` says which (`'BAD_SIGNATURE'`, `'STALE'` — `head` is then the mailbox's head —,
 * `'RELAY_FULL'`, `'RATE'`, `'TOO_LARGE'`, `'NO_BASE'`, `'BAD_RECORD'`, `'BUSY'`, `'UNAVAILABLE'`).
 */
export class MailboxRefusedError extends RhizomeError {
  readonly server: string;
  readonly status: number;
  readonly statusName: string;
  /** The mailbox head the server reported with the refusal (0 when empty or unknown). */
  readonly head: number;
  constructor(server: string, statusName: string, status = 0, head = 0) {
    super('ERR_MAILBOX_REFUSED', `${server} refused the mailbox request: ${statusName}`);
    this.server = server;
    this.status = status;
    this.statusName = statusName;
    this.head = head;
  }
}

/**
 * A mailbox server served a mailbox older than one this replica already saw (its signed head
 * counter went down): the server lost or rolled back data. Nothing is lost locally; the
 * replica re-deposits a snapshot above the counter it remembers.
 */
export class MailboxRollbackError extends RhizomeError {
  readonly server: string;
  /** The head counter the server served. */
  readonly served: number;
  /** The highest counter this replica had seen. */
  readonly remembered: number;
  constructor(server: string, served: number, remembered: number) {
    super('ERR_MAILBOX_ROLLBACK', `${server} served mailbox head ${served}, below the ${remembered} this replica already saw (rolled back or lost)`);
    this.server = server;
    this.served = Number(served);
    this.remembered = Number(remembered);
  }
}

/**
 * Records a mailbox server served do not verify: a bad signature, a broken counter chain, a
 * payload that does not match its digest or does not open. They are ignored.
 */
export class MailboxInvalidError extends RhizomeError {
  constructor(message: string) {
    super('ERR_MAILBOX_INVALID', message);
  }
}

/**
 * A fast path of `@rhizome/sync` through Yjs internals failed its self-test on the yjs that is
 * loaded (another yjs version than the ones Rhizome is tested with): it declined, and Rhizome uses
 * the public Yjs API for it (correct, slower). Reported once per path and process as a warning,
 * never thrown (`@rhizome/sync` `yjsFastPaths()`).
 */
export class YjsInternalsError extends RhizomeError {
  /** The fast path that declined (`codec`, `setEntry`, `integrate`, `updates`). */
  readonly path: string;
  constructor(path: string, reason: string) {
    super('ERR_YJS_INTERNALS', `the ${path} fast path through Yjs internals declined to the public Yjs API: ${reason}`);
    this.path = path;
  }
}

/** Every error code Rhizome uses, in one place. ARCHITECTURE.md lists the same set. */
export const ERROR_CODES = [
  'ERR_INVALID_TOPIC',
  'ERR_INVALID_CONFIG',
  'ERR_INVALID_ARGUMENT',
  'ERR_TRANSPORT_CLOSED',
  'ERR_CONNECTION_CLOSED',
  'ERR_FRAME_TOO_LARGE',
  'ERR_DECRYPT',
  'ERR_PROTOCOL',
  'ERR_TIMEOUT',
  'ERR_ABORTED',
  'ERR_TOPIC_ALREADY_JOINED',
  'ERR_CONNECT_FAILED',
  'ERR_TRANSPORT_UNAVAILABLE',
  'ERR_STORE_CORRUPT',
  'ERR_STORE_VERSION',
  'ERR_STORE_CONFLICT',
  'ERR_STORE_IO',
  'ERR_STORE_READ_ONLY',
  'ERR_STORE_UNAVAILABLE',
  'ERR_CLOSED',
  'ERR_RELAY_REJECTED',
  'ERR_LISTEN',
  'ERR_SLOW_CONSUMER',
  'ERR_MAILBOX_FULL',
  'ERR_MAILBOX_REFUSED',
  'ERR_MAILBOX_ROLLBACK',
  'ERR_MAILBOX_INVALID',
  'ERR_YJS_INTERNALS',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];
