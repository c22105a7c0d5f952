// A small tmpfs for the full-disk and read-only tests (root only: `mount -t tmpfs`). Unmounted by
// `unmount()` (idempotent), which the tests call in afterAll/finally, also on failure.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  dir: string;
  /** Fills the file system with a filler file until ENOSPC; returns its path. */
  fill(): string;
  /** Remounts read-only (`true`) or read-write. */
  remount(readOnly: boolean): void;
  unmount(): void;
}

/** Mounts a tmpfs of `sizeBytes` on a fresh temp dir. */
export function mountTmpfs(sizeBytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0777`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    fill(): string {
      const path = join(dir, `filler-${Date.now()}`);
      const fd = openSync(path, 'w');
      const chunk = Buffer.alloc(4096, 1);
      try {
        for (let i = 0; i < 1 << 20; i++) writeSync(fd, chunk);
      } catch (error) {
        if ((error as { code?: string }).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
      return path;
    },
    remount(readOnly: boolean): void {
      execFileSync('mount', ['-o', `remount,${readOnly ? 'ro' : 'rw'}`, dir]);
    },
    unmount(): void {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', [dir]);
      } catch {
        execFileSync('umount', ['-l', dir]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
