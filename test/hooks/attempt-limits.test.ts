/**
 * The attempt-limit contract of every step-up store (reserveAttempt / settleAttempt), run against the embedded store,
 * two RedisStores on one real Redis, and two RedisStores on the real loopback Redis Cluster (where the user's and the
 * address's counters sit on different slots and are reserved one script each).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../../src/stepup/embedded-store.js';
import { RedisStore } from '../../src/stepup/redis-store.js';
import type { AttemptCounter, StepUpStore } from '../../src/stepup/store.js';
import { REDIS_CLUSTER, REDIS_URL, requireRedis, requireRedisCluster } from '../helpers/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opened: StepUpStore[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

const clusterNodes = () => REDIS_CLUSTER.split(',').map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) }));

/** Two handles on one shared store (the same object for the embedded store: it serves one process). */
const kinds: Array<[string, () => Promise<[StepUpStore, StepUpStore]>]> = [
  [
    'embedded',
    async () => {
      const s = new EmbeddedStore(fs.mkdtempSync(path.join(os.tmpdir(), 'sg-attempts-')));
      return [s, s];
    },
  ],
  [
    'Redis (two clients)',
    async () => {
      await requireRedis();
      const prefix = `sgtest:${crypto.randomUUID()}:`;
      const pair: [StepUpStore, StepUpStore] = [new RedisStore(REDIS_URL, { keyPrefix: prefix }), new RedisStore(REDIS_URL, { keyPrefix: prefix })];
      opened.push(...pair);
      return pair;
    },
  ],
  [
    'Redis Cluster (two clients)',
    async () => {
      await requireRedisCluster();
      const prefix = `sgtest:${crypto.randomUUID()}:`;
      const pair: [RedisStore, RedisStore] = [new RedisStore({ cluster: clusterNodes() }, { keyPrefix: prefix }), new RedisStore({ cluster: clusterNodes() }, { keyPrefix: prefix })];
      opened.push(...pair);
      expect(pair[0].isCluster).toBe(true);
      return pair;
    },
  ],
];

describe.each(kinds)('attempt limits: %s', (_name, open) => {
  const user = (limit: number): AttemptCounter => ({ key: `u:${crypto.randomUUID()}`, limit });
  const address = (limit: number): AttemptCounter => ({ key: `a:10.${crypto.randomInt(255)}.${crypto.randomInt(255)}.${crypto.randomInt(255)}`, limit });

  it('50 parallel reservations with a limit of 5: exactly 5 allowed, the others told how long to wait', async () => {
    const [a, b] = await open();
    const counters = [user(5), address(100)];
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).reserveAttempt(counters, 30)));
    expect(results.filter((r) => r.allowed)).toHaveLength(5);
    for (const r of results) if (!r.allowed) expect(r.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('a release gives back one attempt, never the failures made in parallel', async () => {
    const [a, b] = await open();
    const counters = [user(3)];
    expect((await Promise.all([a.reserveAttempt(counters, 30), b.reserveAttempt(counters, 30), a.reserveAttempt(counters, 30)])).every((r) => r.allowed)).toBe(true);
    await Promise.all([a.settleAttempt(counters, 30, 'failed'), b.settleAttempt(counters, 30, 'released'), a.settleAttempt(counters, 30, 'failed')]);
    expect((await b.reserveAttempt(counters, 30)).allowed).toBe(true);
    expect((await a.reserveAttempt(counters, 30)).allowed).toBe(false);
  });

  it('the failure that fills a counter locks it for the whole window from that moment', async () => {
    const [a, b] = await open();
    const counters = [user(3)];
    for (let i = 0; i < 2; i++) {
      expect((await a.reserveAttempt(counters, 3)).allowed).toBe(true);
      expect((await a.settleAttempt(counters, 3, 'failed')).lockedForSeconds).toBeUndefined();
    }
    await sleep(2_000);
    expect((await b.reserveAttempt(counters, 3)).allowed).toBe(true);
    expect((await b.settleAttempt(counters, 3, 'failed')).lockedForSeconds).toBe(3);
    await sleep(1_500); // the first failure's window is over; the lockout is not
    const locked = await a.reserveAttempt(counters, 3);
    expect(locked.allowed).toBe(false);
    expect(locked.allowed ? 0 : locked.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    await sleep(2_000);
    expect((await a.reserveAttempt(counters, 3)).allowed).toBe(true);
  }, 20_000);

  it('a full address counter refuses without consuming the user counter', async () => {
    const [a, b] = await open();
    const u = user(5);
    const addr = address(2);
    for (let i = 0; i < 2; i++) {
      expect((await a.reserveAttempt([u, addr], 30)).allowed).toBe(true);
      await a.settleAttempt([u, addr], 30, 'failed');
    }
    for (let i = 0; i < 5; i++) expect((await b.reserveAttempt([u, addr], 30)).allowed).toBe(false);
    // The user has used 2 of 5: three more from elsewhere.
    const other = address(10);
    const results = await Promise.all(Array.from({ length: 6 }, () => a.reserveAttempt([u, other], 30)));
    expect(results.filter((r) => r.allowed)).toHaveLength(3);
  });
});
