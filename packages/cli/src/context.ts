import { Output, type Streams } from './output.js';

/** What every command gets from the program: how to print. */
export interface CommandContext {
  streams: Streams;
  /** The Output for a command's parsed options (`--json` or not). */
  output(opts: { json?: boolean }): Output;
  /** Set by a command that fails after printing its own report; the program exits with it. */
  exitCode: number;
}

/** A context printing to the given streams. */
export function createContext(streams: Streams): CommandContext {
  return {
    streams,
    output: (opts) => new Output(opts.json === true, streams),
    exitCode: 0,
  };
}
