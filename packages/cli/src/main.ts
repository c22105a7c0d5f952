/**
 * Entry point of the `rhizome` command (bin/rhizome.js runs it).
 * @packageDocumentation
 */
import { run } from './program.js';

process.exitCode = await run(process.argv);
