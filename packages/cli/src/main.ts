/**
 * Entry point of the `rhizome` command (bin/rhizome.js runs it).
 * @packageDocumentation
 */
import { run } from './program.js';

// Started by the launcher (bin/rhizome.js) with an IPC channel: the channel must not keep this
// process alive, and when it closes (the launcher is gone) this process stops like on SIGTERM.
if (process.channel !== undefined) {
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

// Output piped into a command that exits early (`rhizome sync --json | head -1`): stop the way
// Ctrl-C does (long-running commands close their database cleanly), without a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.emit('SIGTERM', 'SIGTERM');
  });
}

process.exitCode = await run(process.argv);
