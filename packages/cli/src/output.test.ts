// Output modes: results, notes, progress (terminal only, never in --json), errors.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CliError, EXIT_USAGE } from './errors.js';
import { Output, formatBytes } from './output.js';

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

  it('formats byte counts', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1234)).toBe('1.2 kB');
    expect(formatBytes(8_400_000)).toBe('8.4 MB');
    expect(formatBytes(123_000_000)).toBe('123 MB');
  });
});
