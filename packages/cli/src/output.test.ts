// Output modes: results, notes, progress (terminal only, never in --json), errors.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CliError, EXIT_USAGE } from './errors.js';
import { Output, formatBytes, printable } from './output.js';

function stream(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  const chunks: string[] = [];
  const s = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as Writable & { isTTY: boolean; text: () => string };
  s.isTTY = isTTY;
  s.text = () => chunks.join('');
  return s;
}

describe('Output', () => {
  it('draws progress on a terminal and clears it before the next line', () => {
    const stdout = stream(true);
    const stderr = stream(true);
    const out = new Output(false, { stdout, stderr });
    out.progress('syncing 1');
    out.progress('syncing 2');
    out.line('done');
    expect(stderr.text()).toBe('\r\x1b[2Ksyncing 1\r\x1b[2Ksyncing 2\r\x1b[2K');
    expect(stdout.text()).toBe('done\n');
  });

  it('stays quiet when stderr is not a terminal, and in --json mode', () => {
    for (const [json, tty] of [[false, false], [true, true]] as const) {
      const stdout = stream(tty);
      const stderr = stream(tty);
      const out = new Output(json, { stdout, stderr });
      out.progress('syncing');
      out.clearProgress();
      expect(stderr.text()).toBe('');
    }
  });

  it('--json: results are one JSON line on stdout, notes are dropped, errors are JSON on stderr', () => {
    const stdout = stream(false);
    const stderr = stream(false);
    const out = new Output(true, { stdout, stderr });
    out.result({ id: 'n1' }, 'text form');
    out.note('a note for people');
    out.line('text only');
    out.error(new CliError('ERR_USAGE', 'bad flag', { exitCode: EXIT_USAGE, hint: 'see --help' }));
    expect(stdout.text()).toBe('{"id":"n1"}\n');
    expect(JSON.parse(stderr.text())).toEqual({ error: { code: 'ERR_USAGE', message: 'bad flag', hint: 'see --help' } });
  });

  it('text: results on stdout, notes and errors with their hint on stderr', () => {
    const stdout = stream(false);
    const stderr = stream(false);
    const out = new Output(false, { stdout, stderr });
    out.result({ id: 'n1' }, () => 'put n1');
    out.note('working offline');
    out.error(new CliError('ERR_CONNECT_FAILED', 'could not reach relay ws://x', { hint: 'check the URL' }));
    expect(stdout.text()).toBe('put n1\n');
    expect(stderr.text()).toBe('working offline\nrhizome: error: could not reach relay ws://x\ncheck the URL\n');
  });

  it('text mode shows terminal control characters from others as escapes; JSON mode escapes them as JSON does', () => {
    const hostile = 'peer\x1b]0;pwned\x07\x1b[2J\u202eevil\x9b1m\r';
    expect(printable(hostile)).toBe('peer\\x1b]0;pwned\\x07\\x1b[2J\\u202eevil\\x9b1m\\x0d');
    expect(printable('tabs\tand\nnewlines stay, ünïcödé too')).toBe('tabs\tand\nnewlines stay, ünïcödé too');
    const stdout = stream(false);
    const stderr = stream(false);
    const out = new Output(false, { stdout, stderr });
    out.line(`peer + ${hostile} connected`);
    out.note(hostile);
    out.warning('W', hostile);
    out.error(new CliError('ERR_X', hostile, { hint: hostile }));
    for (const text of [stdout.text(), stderr.text()]) {
      expect(text).not.toMatch(/[\x1b\x07\x9b\u202e\r]/);
      expect(text).toContain('\\x1b]0;pwned');
    }
    out.redraw('table');
    expect(stdout.text().endsWith('\x1b[H\x1b[2Jtable\n')).toBe(true);
    const json = stream(false);
    new Output(true, { stdout: json, stderr: stream(false) }).jsonLine({ peerId: hostile });
    // JSON escapes C0 (ESC, BEL, CR) by its own rule; it is read by programs, which get the id as sent.
    expect(json.text()).not.toMatch(/[\x1b\x07\r]/);
  });

  it('formats byte counts', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1234)).toBe('1.2 kB');
    expect(formatBytes(8_400_000)).toBe('8.4 MB');
    expect(formatBytes(123_000_000)).toBe('123 MB');
  });
});
