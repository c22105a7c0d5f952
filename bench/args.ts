// Command-line flags of the standalone bench scripts (bench/puts-tight.ts, puts-floor.ts, cold-sync.ts).

/** The value after `name` on the command line (`--rounds 5`), or `fallback` when the flag is absent. */
export function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
}
