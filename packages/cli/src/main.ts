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

process.exitCode = await run(process.argv);
