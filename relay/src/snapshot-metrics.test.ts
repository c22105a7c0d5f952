import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { snapshotMetrics } from './snapshot-metrics.js';

describe('snapshotMetrics', () => {
  it('reads the source once per scrape, and every metric of that scrape sees the same snapshot', async () => {
    const registry = new Registry();
    let reads = 0;
    let total = 10;
    const m = snapshotMetrics(registry, () => {
      reads++;
      return { open: total - 3, total };
    });
    m.gauge('t_open', 'open things', (s) => s.open);
    m.counter('t_total', 'things ever', (s) => s.total);
    const before = reads;
    const text1 = await registry.metrics();
    expect(reads - before).toBe(1);
    expect(text1).toContain('t_open 7');
    expect(text1).toContain('t_total 10');
    total = 25;
    const text2 = await registry.metrics();
    expect(reads - before).toBe(2);
    // A counter reports the source's running total, not a sum over scrapes.
    expect(text2).toContain('t_total 25');
    expect(text2).toContain('t_open 22');
    expect(m.current().total).toBe(25);
  });
});
