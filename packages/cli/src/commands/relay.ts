import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** `rhizome relay`: runs a relay server (wired once @rhizome/relay lands). */
export function registerRelay(program: Command, ctx: CommandContext): void {
  void ctx;
  program.command('relay').description('run a relay server');
}
