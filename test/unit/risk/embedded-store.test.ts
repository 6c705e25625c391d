/**
 * The embedded risk store stays bounded: 100,000 distinct addresses (and as many sessions) keep at most the cap
 * per partition and a bounded heap, evict the least recently used, never a flag; entries expire at their TTL.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { EmbeddedRiskStore } from '../../../src/risk/embedded-store.js';
import { KEY, subjectTag } from '../../../src/risk/store.js';

// Retained memory, not garbage not yet collected: a collection before each reading (heapUsed alone moves with GC timing).
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

describe('EmbeddedRiskStore', () => {
  it('keeps at most maxSubjects per partition under a flood of 100,000 distinct addresses and sessions; heap growth bounded', async () => {
    const store = new EmbeddedRiskStore({ maxSubjects: 5_000 });
    const now = Date.now();
    await store.run([{ subject: subjectTag('u', 'alice'), ops: [['set', KEY.flag, '{"user":"alice","rule":"r","at":1,"reason":"x","signals":[]}', 60_000]] }]);
    collect();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i += 500) {
      const batches = [];
      for (let j = i; j < i + 500; j++) {
        batches.push({ subject: subjectTag('a', `10.${j >> 16}.${(j >> 8) & 255}.${j & 255}`), ops: [['add', KEY.loginFailures, `m${j}`, now, 60_000, 1000] as const] });
        batches.push({ subject: subjectTag('s', `session-${j}`), ops: [['add', KEY.attacks, `m${j}`, now, 60_000, 1000] as const] });
      }
      await store.run(batches);
    }
    // Two flooded partitions (addresses, sessions) plus the one flag.
    expect(store.size).toBeLessThanOrEqual(2 * 5_000 + 1);
    collect();
    const grown = process.memoryUsage().heapUsed - before;
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    const flag = (await store.run([{ subject: subjectTag('u', 'alice'), ops: [['get', KEY.flag]] }]))[0]![0];
    expect(String(flag)).toContain('alice');
    // The newest survive, the oldest were evicted.
    const counts = await store.run([
      { subject: subjectTag('a', '10.1.134.159'), ops: [['count', KEY.loginFailures, 0]] },
      { subject: subjectTag('a', '10.0.0.0'), ops: [['count', KEY.loginFailures, 0]] },
    ]);
    expect(counts[0]![0]).toBe(1);
    expect(counts[1]![0]).toBe(0);
  });

  it('caps a sorted set, drops members older than the TTL, and expires keys', async () => {
    let now = 1_000_000;
    const store = new EmbeddedRiskStore({ now: () => now });
    const s = subjectTag('u', 'bob');
    for (let i = 0; i < 50; i++) await store.run([{ subject: s, ops: [['add', 'freq:r:10', `m${i}`, now + i, 10_000, 20]] }]);
    expect((await store.run([{ subject: s, ops: [['count', 'freq:r:10', 0]] }]))[0]![0]).toBe(20);
    now += 10_100;
    expect((await store.run([{ subject: s, ops: [['count', 'freq:r:10', 0]] }]))[0]![0]).toBe(0);
  });

  it('escapes braces so an id cannot end the Redis hash tag early', () => {
    expect(subjectTag('u', 'a}:x{b')).toBe('u:a%7d:x%7bb');
    expect(subjectTag('u', 'x'.repeat(300))).toMatch(/^u:#[0-9a-f]+$/);
  });
});
