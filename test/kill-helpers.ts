// Runs a TypeScript fixture as a real child process that prints one line per acknowledged
// operation, and SIGKILLs it once it has printed enough: the SIGKILL durability tests share it.
import { spawn } from 'node:child_process';

/** What a killed writer printed, and how it ended. */
export interface KilledRun {
  /** Every complete line printed, including lines read after the kill was sent. */
  lines: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/**
 * Runs `script args...` under Node with the workspace sources (tsx), SIGKILLs it as soon as it
 * has printed `killAfter` lines, and resolves once its stdout has ended (so every line it printed
 * before dying has been read). Rejects if it prints fewer lines within `timeoutMs`.
 */
export function runAndKill(script: string, args: string[], killAfter: number, timeoutMs = 40_000): Promise<KilledRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    let killed = false;
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer printed only ${lines.length} of ${killAfter} lines within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (!killed && lines.length >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => {
      clearTimeout(guard);
      reject(error);
    });
    // 'close' fires after stdout has ended: every line the child printed has been read.
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ lines, signal, code, stderr });
    });
  });
}
