import type { CliError } from './errors.js';

/** Where a command writes. Tests and the demo may pass their own streams. */
export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * Output of one command run. In `--json` mode stdout carries only JSON (one document, or one
 * object per line for streams of events); people-facing notes then go nowhere, and errors are
 * one JSON object on stderr. In text mode results go to stdout and notes to stderr.
 */
export class Output {
  readonly json: boolean;
  readonly streams: Streams;
  #progressShown = false;

  constructor(json: boolean, streams: Streams = { stdout: process.stdout, stderr: process.stderr }) {
    this.json = json;
    this.streams = streams;
  }

  /** True when progress lines may be drawn: a terminal on stderr, and not `--json`. */
  get interactive(): boolean {
    return !this.json && this.streams.stderr.isTTY === true;
  }

  /** A line of result text on stdout (text mode only). */
  line(text: string): void {
    if (!this.json) this.#write(this.streams.stdout, `${printable(text)}\n`);
  }

  /** Clears the terminal and draws `text` from its top-left corner (text mode only; `status --watch`). */
  redraw(text: string): void {
    if (!this.json) this.#write(this.streams.stdout, `\x1b[H\x1b[2J${printable(text)}\n`);
  }

  /** One JSON value on stdout, on one line (JSON mode only). */
  jsonLine(value: unknown): void {
    if (this.json) this.#write(this.streams.stdout, `${JSON.stringify(value)}\n`);
  }

  /** `jsonLine(value)` in JSON mode, `line(text)` otherwise. */
  result(value: unknown, text: string | (() => string)): void {
    if (this.json) this.jsonLine(value);
    else this.line(typeof text === 'function' ? text() : text);
  }

  /** A note for people on stderr (dropped in JSON mode). */
  note(text: string): void {
    if (!this.json) this.#write(this.streams.stderr, `${printable(text)}\n`);
  }

  /**
   * A warning on stderr, also in JSON mode (as `{"warning":{"code","message"}}`): something the
   * user should change, though the command goes on.
   */
  warning(code: string, message: string): void {
    this.clearProgress();
    if (this.json) this.streams.stderr.write(`${JSON.stringify({ warning: { code, message } })}\n`);
    else this.streams.stderr.write(`rhizome: warning: ${printable(message)}\n`);
  }

  /** Redraws the progress line on a terminal; does nothing otherwise. */
  progress(text: string): void {
    if (!this.interactive) return;
    this.#progressShown = true;
    this.streams.stderr.write(`\r\x1b[2K${printable(text)}`);
  }

  /** Removes the progress line, if one is shown. */
  clearProgress(): void {
    if (!this.#progressShown) return;
    this.#progressShown = false;
    this.streams.stderr.write('\r\x1b[2K');
  }

  /** Reports an error on stderr: text with a hint, or one JSON object in JSON mode. */
  error(error: CliError): void {
    this.clearProgress();
    if (this.json) {
      const body: Record<string, string> = { code: error.code, message: error.message };
      if (error.hint !== undefined) body['hint'] = error.hint;
      this.streams.stderr.write(`${JSON.stringify({ error: body })}\n`);
    } else {
      this.streams.stderr.write(`rhizome: error: ${printable(error.message)}\n`);
      if (error.hint !== undefined) this.streams.stderr.write(`${printable(error.hint)}\n`);
    }
  }

  #write(stream: NodeJS.WritableStream, text: string): void {
    this.clearProgress();
    stream.write(text);
  }
}

/**
 * Text mode output with every terminal control character but newline and tab shown as an escape
 * (`\x1b` → `\\x1b`, U+202E → `\\u202e`): C0, DEL, C1 and the bidirectional overrides. What the
 * CLI prints includes what others chose — a relay peer's id (anyone on the topic), node ids and
 * relay error texts —, which must not be able to move the cursor, retitle the window or reorder
 * what the user reads. (`--json` output is for programs: JSON escapes C0 by its own rule and
 * leaves the rest as sent.)
 */
export function printable(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** `1234567` → `1.2 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** `HH:MM:SS` of now, local time, for event lines. */
export function clock(date = new Date()): string {
  return date.toTimeString().slice(0, 8);
}
