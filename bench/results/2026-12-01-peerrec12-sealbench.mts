// Opening cost per frame: one sender (a stream) vs 4 senders in turn (an idle replica's pings, or 4 writers).
const root = process.argv[2]!;
const { FrameSealer, keyMaterial } = await import(`${root}/packages/sync/src/seal.ts`);
const { deriveTopic } = await import(`${root}/packages/core/src/topic.ts`);
const topic = deriveTopic('bench');
const material = keyMaterial('bench');
const receiver = new FrameSealer(material, topic);
const senders = Array.from({ length: 4 }, () => new FrameSealer(material, topic));
for (const size of [48, 1024]) {
  const plain = new Uint8Array(size).fill(5);
  for (const n of [1, 4]) {
    const frames = Array.from({ length: 4000 }, (_, i) => senders[i % n]!.seal(plain));
    const res: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t = performance.now();
      for (let k = 0; k < 5; k++) for (const f of frames) receiver.open(f);
      res.push(((performance.now() - t) * 1000) / (5 * frames.length));
    }
    res.sort((a, b) => a - b);
    console.log(`${size} B frames, ${n} sender(s) in turn: median ${res[3]!.toFixed(2)} µs per open (min ${res[0]!.toFixed(2)})`);
  }
}
