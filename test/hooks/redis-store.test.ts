/**
 * RedisStore against real redis-server processes on loopback: the shared one from scripts/services.sh (fails loudly
 * when it is not running) and, for the outage test, a throwaway server this file starts, kills and restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it, expect, vi } from 'vitest';
import { RedisStore } from '../../src/stepup/redis-store.js';
import { StoreUnavailableError, type EnrolledFactor } from '../../src/stepup/store.js';
import { REDIS_URL, requireRedis } from '../helpers/services.js'; // SG_REDIS_URL ?? redis://127.0.0.1:63799
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const factor: EnrolledFactor = { method: 'totp', secretCiphertext: 'sb1.abc', createdAt: 1_700_000_000_000 };

const stores: RedisStore[] = [];
const prefixes: string[] = [];
function uniquePrefix(): string {
  const prefix = `sgtest:${crypto.randomUUID()}:`;
  prefixes.push(prefix);
  return prefix;
}
function store(prefix: string, url = REDIS_URL): RedisStore {
  const s = new RedisStore(url, { keyPrefix: prefix });
  stores.push(s);
  return s;
}

let raw: Redis;

beforeAll(async () => {
  // Loud failure, never a skip: this suite is about the real server.
  await requireRedis();
  raw = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  raw.on('error', () => undefined);
  try {
    await raw.connect();
    expect(await raw.ping()).toBe('PONG');
  } catch (error) {
    throw new Error(
      `Redis at ${REDIS_URL} is not reachable (${(error as Error).message}). Start it with: bash scripts/services.sh start`,
    );
  }
});

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  if (raw?.status === 'ready') {
    for (const prefix of prefixes) {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length > 0) await raw.del(...keys);
    }
    await raw.quit();
  }
});

describe('RedisStore on the shared server', () => {
  it('ping works', async () => {
    await expect(store(uniquePrefix()).ping()).resolves.toBeUndefined();
  });

  it('a time step accepted by one instance is refused by another', async () => {
    const prefix = uniquePrefix();
    const a = store(prefix);
    const b = store(prefix);
    expect(await a.acceptTimeStep('alice', 1000)).toBe(true);
    expect(await b.acceptTimeStep('alice', 1000)).toBe(false);
    expect(await b.acceptTimeStep('alice', 999)).toBe(false);
    expect(await b.acceptTimeStep('alice', 1001)).toBe(true);
    expect(await a.acceptTimeStep('alice', 1001)).toBe(false);
    expect(await a.acceptTimeStep('bob', 1000)).toBe(true);
    expect(await a.acceptTimeStep('alice', -1)).toBe(false);
    // kept for a few minutes only
    const ttl = await raw.pttl(`${prefix}step:alice`);
    expect(ttl).toBeGreaterThan(500_000);
    expect(ttl).toBeLessThanOrEqual(600_000);
  });

  it('10 concurrent acceptTimeStep calls with the same step, over two instances → exactly one true', async () => {
    const prefix = uniquePrefix();
    const a = store(prefix);
    const b = store(prefix);
    await Promise.all([a.ping(), b.ping()]);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).acceptTimeStep('alice', 77)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('failure windows: counting, time left, start at the first failure, expiry, reset', async () => {
    const prefix = uniquePrefix();
    const a = store(prefix);
    const b = store(prefix);
    expect(await a.failures('k')).toEqual({ count: 0, retryAfterSeconds: 0 });
    expect(await a.recordFailure('k', 60)).toEqual({ count: 1, retryAfterSeconds: 60 });
    await sleep(1100);
    const second = await b.recordFailure('k', 60);
    expect(second.count).toBe(2);
    expect(second.retryAfterSeconds).toBeLessThanOrEqual(59); // not extended by the second failure
    expect(await a.failures('k')).toEqual(second);
    await b.resetFailures('k');
    expect(await a.failures('k')).toEqual({ count: 0, retryAfterSeconds: 0 });

    expect((await a.recordFailure('short', 0.3)).count).toBe(1);
    expect((await a.recordFailure('short', 0.3)).count).toBe(2);
    await sleep(450);
    expect(await a.failures('short')).toEqual({ count: 0, retryAfterSeconds: 0 });
    expect(await a.recordFailure('short', 0.3)).toEqual({ count: 1, retryAfterSeconds: 1 });
  });

  it('concurrent recordFailure calls are all counted', async () => {
    const a = store(uniquePrefix());
    const results = await Promise.all(Array.from({ length: 20 }, () => a.recordFailure('burst', 60)));
    expect(results.map((r) => r.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('consumeOnce: exactly one winner across instances, then false until the ttl passes', async () => {
    const prefix = uniquePrefix();
    const a = store(prefix);
    const b = store(prefix);
    await Promise.all([a.ping(), b.ping()]);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).consumeOnce('jti-1', 0.4)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await a.consumeOnce('jti-1', 0.4)).toBe(false);
    expect(await a.consumeOnce('jti-2', 0.4)).toBe(true);
    await sleep(550);
    expect(await b.consumeOnce('jti-1', 0.4)).toBe(true);
  });

  it('factors and known addresses are shared between instances', async () => {
    const prefix = uniquePrefix();
    const a = store(prefix);
    const b = store(prefix);
    expect(await b.getFactor('alice')).toBeUndefined();
    await a.setFactor('alice', factor);
    expect(await b.getFactor('alice')).toEqual(factor);
    await b.deleteFactor('alice');
    expect(await a.getFactor('alice')).toBeUndefined();

    expect(await a.knownAddresses('alice')).toEqual([]);
    await a.addKnownAddress('alice', '192.0.2.1');
    await b.addKnownAddress('alice', '192.0.2.1');
    await b.addKnownAddress('alice', '2001:db8::1');
    expect([...(await a.knownAddresses('alice'))].sort()).toEqual(['192.0.2.1', '2001:db8::1']);
  });

  it('a corrupt factor record is an error, never "not enrolled"', async () => {
    const prefix = uniquePrefix();
    await raw.set(`${prefix}factor:alice`, '{"method":"sms"}');
    await expect(store(prefix).getFactor('alice')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('prefixes isolate deployments', async () => {
    const a = store(uniquePrefix());
    const b = store(uniquePrefix());
    expect(await a.acceptTimeStep('alice', 5)).toBe(true);
    expect(await b.acceptTimeStep('alice', 5)).toBe(true);
  });

  it('after close, calls fail with StoreUnavailableError', async () => {
    const s = new RedisStore(REDIS_URL, { keyPrefix: uniquePrefix() });
    await s.ping();
    await s.close();
    await expect(s.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

// --- outage and recovery on a throwaway server --------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await Promise.race([
      spawnError,
      new Promise<boolean>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port }, () => {
          socket.end();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      }),
    ]);
    if (up) return child;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not start: ${stderr}`);
    }
    await sleep(50);
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function elapsed<T>(fn: () => Promise<T>): Promise<{ ms: number; error: unknown }> {
  const start = performance.now();
  try {
    await fn();
    return { ms: performance.now() - start, error: undefined };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

describe('RedisStore outage and recovery (throwaway redis-server)', () => {
  let server: ChildProcess | undefined;
  afterAll(async () => {
    if (server) await kill(server);
  });

  it('fails fast with StoreUnavailableError while Redis is down and recovers by itself when it is back', async () => {
    const writes: string[] = [];
    const realWrite = process.stderr.write.bind(process.stderr);
    const stderrSpy = vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      writes.push(String(chunk));
      return (realWrite as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write);
    const consoleSpy = vi.spyOn(console, 'error');
    try {
      const port = await freePort();
      server = await startRedis(port);
      const url = `redis://127.0.0.1:${port}`;
      const s = store(uniquePrefix(), url);
      expect(await s.acceptTimeStep('alice', 10)).toBe(true);
      await s.setFactor('alice', factor);

      await kill(server);

      const calls: Array<[string, () => Promise<unknown>]> = [
        ['acceptTimeStep', () => s.acceptTimeStep('alice', 11)],
        ['getFactor', () => s.getFactor('alice')],
        ['setFactor', () => s.setFactor('alice', factor)],
        ['deleteFactor', () => s.deleteFactor('alice')],
        ['recordFailure', () => s.recordFailure('k', 60)],
        ['failures', () => s.failures('k')],
        ['resetFailures', () => s.resetFailures('k')],
        ['addKnownAddress', () => s.addKnownAddress('alice', '192.0.2.1')],
        ['knownAddresses', () => s.knownAddresses('alice')],
        ['consumeOnce', () => s.consumeOnce('jti', 60)],
        ['ping', () => s.ping()],
      ];
      for (const [name, call] of calls) {
        const { ms, error } = await elapsed(call);
        expect(error, `${name} while Redis is down`).toBeInstanceOf(StoreUnavailableError);
        expect(ms, `${name} took ${ms.toFixed(0)} ms`).toBeLessThan(2000);
      }
      // Concurrent calls during the outage fail fast too.
      const burst = await elapsed(() => Promise.all(Array.from({ length: 20 }, () => s.acceptTimeStep('alice', 12))));
      expect(burst.error).toBeInstanceOf(StoreUnavailableError);
      expect(burst.ms).toBeLessThan(2000);

      // Stay down for a while (several reconnect attempts), then come back on the same port.
      await sleep(1500);
      server = await startRedis(port);
      const deadline = Date.now() + 8000;
      let recoveredAfter = -1;
      const restartedAt = Date.now();
      while (Date.now() < deadline) {
        try {
          await s.ping();
          recoveredAfter = Date.now() - restartedAt;
          break;
        } catch (error) {
          expect(error).toBeInstanceOf(StoreUnavailableError);
          await sleep(100);
        }
      }
      expect(recoveredAfter, 'the store did not recover within 8 s').toBeGreaterThanOrEqual(0);
      expect(recoveredAfter).toBeLessThan(5000);
      // Same instance, working again (the throwaway server kept no data).
      expect(await s.acceptTimeStep('alice', 20)).toBe(true);
      expect(await s.acceptTimeStep('alice', 20)).toBe(false);
      expect((await s.recordFailure('k', 60)).count).toBe(1);
      expect(await s.consumeOnce('jti', 60)).toBe(true);

      // ioredis never printed its own "Unhandled error event"; our warning is at most one line.
      const all = writes.join('') + consoleSpy.mock.calls.flat().map(String).join('\n');
      expect(all).not.toMatch(/Unhandled error event/);
      expect(writes.filter((w) => w.includes(`127.0.0.1:${port} is unavailable`)).length).toBeLessThanOrEqual(1);
    } finally {
      stderrSpy.mockRestore();
      consoleSpy.mockRestore();
    }
  });

  it('a hung Redis (process stopped) fails within the command timeout, and works again when it resumes', async () => {
    const port = await freePort();
    const hung = await startRedis(port);
    try {
      const s = store(uniquePrefix(), `redis://127.0.0.1:${port}`);
      expect(await s.acceptTimeStep('alice', 1)).toBe(true);
      hung.kill('SIGSTOP');
      const { ms, error } = await elapsed(() => s.acceptTimeStep('alice', 2));
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(ms).toBeLessThan(2000);
      hung.kill('SIGCONT');
      await sleep(100);
      expect(await s.acceptTimeStep('alice', 3)).toBe(true);
      expect(await s.acceptTimeStep('alice', 2)).toBe(false);
    } finally {
      hung.kill('SIGCONT');
      await kill(hung);
    }
  });

  it('a store created while Redis is down fails fast, then connects once it starts', async () => {
    const port = await freePort();
    const s = store(uniquePrefix(), `redis://127.0.0.1:${port}`);
    const first = await elapsed(() => s.ping());
    expect(first.error).toBeInstanceOf(StoreUnavailableError);
    expect(first.ms).toBeLessThan(2000);
    const late = await startRedis(port);
    try {
      const deadline = Date.now() + 8000;
      let ok = false;
      while (!ok && Date.now() < deadline) {
        ok = await s.ping().then(
          () => true,
          () => false,
        );
        if (!ok) await sleep(100);
      }
      expect(ok).toBe(true);
      expect(await s.acceptTimeStep('alice', 1)).toBe(true);
    } finally {
      await s.close();
      await kill(late);
    }
  });
});
