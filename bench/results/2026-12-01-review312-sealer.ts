// review3 (session 12): frames/s opened by one database's FrameSealer when 5 senders alternate
// frame by frame (the case c2d752c made re-derive a subkey per frame), and from one sender.
// Run from a worktree root: node --conditions=rhizome-source --import tsx <this file> [rounds]
// Prints one JSON line per pattern (best of 5 runs; CPU time of the process).
import { FrameSealer } from '../../packages/sync/src/seal.js';

const rounds = Number(process.argv[2] ?? 20000);
const material = new TextEncoder().encode('review3-sealer-bench');
const topic = new Uint8Array(32).fill(7);
const receiver = new FrameSealer(material, topic);
const senders = Array.from({ length: 5 }, () => new FrameSealer(material, topic));
const plain = new Uint8Array(64).fill(1);

function frames(pattern: 'alternating5' | 'one'): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let r = 0; r < rounds; r++) {
    if (pattern === 'one') for (let s = 0; s < 5; s++) out.push(senders[0]!.seal(plain));
    else for (const s of senders) out.push(s.seal(plain));
  }
  return out;
}

for (const pattern of ['alternating5', 'one'] as const) {
  const list = frames(pattern);
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const t0 = process.cpuUsage();
    for (const f of list) receiver.open(f);
    const dt = process.cpuUsage(t0);
    best = Math.min(best, (dt.user + dt.system) / 1e6);
  }
  console.log(JSON.stringify({ pattern, frames: list.length, bestCpuS: +best.toFixed(4), framesPerS: Math.round(list.length / best), usPerFrame: +((best * 1e6) / list.length).toFixed(3) }));
}
