import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** `rhizome dht-bootstrap`: runs a DHT bootstrap node (wired once @rhizome/transport-dht lands). */
export function registerDhtBootstrap(program: Command, ctx: CommandContext): void {
  void ctx;
  program.command('dht-bootstrap').description('run a DHT bootstrap node');
}
