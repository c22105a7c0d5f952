/** Signals that stop a long-running command (`sync`, `relay`, `dht-bootstrap`). */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Resolves with the first stop signal received (or when `signal` aborts). Later signals are
 * absorbed while the command shuts down, so a second Ctrl-C (or the launcher passing the
 * terminal's SIGINT on) does not kill it halfway through closing.
 */
export function untilStopSignal(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (name: string): void => resolve(name);
    for (const name of STOP_SIGNALS) process.on(name, onSignal);
    signal?.addEventListener('abort', () => resolve('abort'), { once: true });
  });
}
