/** The shared interval timers live in core (the relay transport's liveness ticks on them too). */
export { joinTicker, leaveTicker, TICK_CHUNK } from '@rhizome/core';
export type { Tickable } from '@rhizome/core';
