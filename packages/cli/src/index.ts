/**
 * @rhizome/cli: the `rhizome` command. `run(argv)` runs it in-process and returns the exit code.
 * @packageDocumentation
 */
export { run, createProgram, VERSION } from './program.js';
export { CliError, describeError, usageError, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './errors.js';
export { Output, formatBytes } from './output.js';
export type { Streams } from './output.js';
export { parseNodeData, findJsonError } from './json.js';
export { eventToJson, eventToText } from './commands/sync.js';
export type { SyncEventJson } from './commands/sync.js';
export type { StatusReport } from './commands/status.js';
