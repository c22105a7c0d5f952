import { RhizomeError } from '@rhizome/core';
import type { TransportConfig } from '@rhizome/core';
import { tlsHint } from './tls-hints.js';

/** Exit code of a successful run. */
export const EXIT_OK = 0;
/** Exit code when the command ran but failed (bad file, unreachable relay, timeout, ...). */
export const EXIT_FAILURE = 1;
/** Exit code when the command line itself is wrong (unknown option, bad argument, bad JSON). */
export const EXIT_USAGE = 2;

/**
 * An error the CLI reports to the user: what went wrong, what to do about it, and the exit code.
 * Commands throw it (or any error; {@link describeError} turns the rest into one).
 */
export class CliError extends Error {
  /** Stable code (`ERR_USAGE`, or the `code` of the Rhizome error behind it). */
  readonly code: string;
  /** {@link EXIT_FAILURE} or {@link EXIT_USAGE}. */
  readonly exitCode: number;
  /** One sentence telling the user what to do next, when there is one. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CliError';
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT_FAILURE;
    this.hint = options.hint;
  }
}

/** A bad command line: exit code 2. */
export function usageError(message: string, hint?: string): CliError {
  return new CliError('ERR_USAGE', message, hint === undefined ? { exitCode: EXIT_USAGE } : { exitCode: EXIT_USAGE, hint });
}

/** Which command-line flag sets each transport configuration field. */
const FLAG_OF_FIELD: Record<string, string> = {
  relayUrl: '--relay',
  bootstrap: '--bootstrap',
  listen: '--listen',
  keyFile: '--key-file',
  token: '--token',
  timeoutMs: '--timeout',
  secret: '--secret',
  id: '<database-id>',
  path: '--db',
};

/** What a command knows about its network, for hints: the configuration and the `--tls-ca` file. */
export interface ErrorContext {
  network?: Partial<TransportConfig> | Array<Partial<TransportConfig>> | undefined;
  tlsCaFile?: string | undefined;
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Turns anything a command threw into a {@link CliError} with a hint: Rhizome errors are told
 * apart by their `code`, system errors by their errno code.
 */
export function describeError(error: unknown, context: ErrorContext = {}): CliError {
  if (error instanceof CliError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = errnoCode(error);
  if (error instanceof RhizomeError) {
    switch (error.code) {
      case 'ERR_STORE_CORRUPT':
        return new CliError(error.code, `bad database file ${message}`, {
          hint: 'Check that --db names a Rhizome database file (it was left unchanged); give a new file name to start a fresh replica.',
          cause: error,
        });
      case 'ERR_STORE_VERSION':
        return new CliError(error.code, `bad database file ${message}`, {
          hint: 'Upgrade Rhizome to open this file, or give another --db file.',
          cause: error,
        });
      case 'ERR_CONNECT_FAILED':
        return new CliError(error.code, message, {
          hint:
            tlsHint(error, context.network, context.tlsCaFile) ??
            'Check the address and that the relay or peer is running and reachable (a local relay: `rhizome relay --port 8080 --host 127.0.0.1`).',
          cause: error,
        });
      case 'ERR_RELAY_REJECTED': {
        const closeName = (error as RhizomeError & { closeName?: string }).closeName;
        return new CliError(error.code, message, {
          hint:
            closeName === 'UNAUTHORIZED'
              ? 'The relay requires an access token: pass --token (or set RHIZOME_RELAY_TOKEN) with the one it was started with.'
              : 'The relay refused this session; check its limits and logs.',
          cause: error,
        });
      }
      case 'ERR_LISTEN': {
        const reason = (error as RhizomeError & { reason?: string }).reason;
        return new CliError(error.code, message, {
          hint:
            reason === 'EACCES'
              ? 'Ports below 1024 need privileges: use --port 8080 (behind a reverse proxy on 443), or grant the capability (see README).'
              : reason === 'EADDRINUSE'
                ? 'Another program listens on that port: choose another with --port.'
                : 'Check --host and --port.',
          cause: error,
        });
      }
      case 'ERR_INVALID_CONFIG': {
        const field = (error as RhizomeError & { field?: string }).field;
        const flag = field === undefined ? undefined : FLAG_OF_FIELD[field];
        return new CliError(error.code, flag ? `${flag}: ${message.replace(/^[^:]*: /, '')}` : message, {
          exitCode: EXIT_USAGE,
          hint: 'Run the command with --help to see its options and an example.',
          cause: error,
        });
      }
      case 'ERR_INVALID_ARGUMENT':
        return new CliError(error.code, message, { exitCode: EXIT_USAGE, hint: 'Run the command with --help for an example.', cause: error });
      case 'ERR_TIMEOUT':
        return new CliError(error.code, message, {
          hint: 'The peers did not finish syncing in time: raise --timeout, or check the network.',
          cause: error,
        });
      case 'ERR_DECRYPT':
        return new CliError(error.code, message, {
          hint: 'The other replicas use another --secret (or another database id): use the same on every replica.',
          cause: error,
        });
      case 'ERR_TRANSPORT_UNAVAILABLE':
        return new CliError(error.code, message, { hint: 'Run `npm install` in the Rhizome repository.', cause: error });
      default:
        return new CliError(error.code, message, { cause: error });
    }
  }
  switch (code) {
    case 'EACCES':
      return new CliError(code, message, {
        hint: 'Permission denied: ports below 1024 need privileges (use --port 8080, or run behind a reverse proxy); files need write access.',
        cause: error,
      });
    case 'EADDRINUSE':
      return new CliError(code, message, { hint: 'Another program listens on that port: choose another with --port.', cause: error });
    case 'ENOENT':
      return new CliError(code, message, { hint: 'Check that the file or its directory exists.', cause: error });
    case 'EISDIR':
      return new CliError(code, message, { hint: '--db must name a file, not a directory.', cause: error });
    default:
      return new CliError(code ?? 'ERR_UNEXPECTED', message, { cause: error });
  }
}
