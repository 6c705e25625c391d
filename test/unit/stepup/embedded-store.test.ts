import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it, expect, vi } from 'vitest';
import { EmbeddedStore } from '../../../src/stepup/embedded-store.js';
import { StoreUnavailableError, type EnrolledFactor } from '../../../src/stepup/store.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-store-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const factor = (n = 1): EnrolledFactor => ({ method: 'totp', secretCiphertext: `sb1.cipher${n}`, createdAt: 1_700_000_000_000 + n });

describe('EmbeddedStore: single-use time steps', () => {
  it('accepts a step once; the same step again or a lower one is refused', async () => {
    const store = new EmbeddedStore(tempDir());
    expect(await store.acceptTimeStep('alice', 100)).toBe(true);
    expect(await store.acceptTimeStep('alice', 100)).toBe(false);
    expect(await store.acceptTimeStep('alice', 99)).toBe(false);
    expect(await store.acceptTimeStep('alice', 101)).toBe(true);
    expect(await store.acceptTimeStep('alice', 100)).toBe(false);
    expect(await store.acceptTimeStep('bob', 100)).toBe(true); // per user
  });

  it('5 concurrent calls with the same step → exactly one true', async () => {
    const store = new EmbeddedStore(tempDir());
    const results = await Promise.all(Array.from({ length: 5 }, () => store.acceptTimeStep('alice', 5000)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('refuses invalid steps', async () => {
    const store = new EmbeddedStore(tempDir());
    for (const step of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
      expect(await store.acceptTimeStep('alice', step)).toBe(false);
    }
  });
});

describe('EmbeddedStore: failure windows', () => {
  it('counts within the window, reports time left, and expires', async () => {
    const store = new EmbeddedStore(tempDir());
    expect(await store.failures('k')).toEqual({ count: 0, retryAfterSeconds: 0 });
    expect(await store.recordFailure('k', 0.3)).toEqual({ count: 1, retryAfterSeconds: 1 });
    expect(await store.recordFailure('k', 0.3)).toEqual({ count: 2, retryAfterSeconds: 1 });
    expect(await store.failures('k')).toEqual({ count: 2, retryAfterSeconds: 1 });
    expect(await store.failures('other')).toEqual({ count: 0, retryAfterSeconds: 0 });
    await sleep(400);
    expect(await store.failures('k')).toEqual({ count: 0, retryAfterSeconds: 0 });
    expect(await store.recordFailure('k', 0.3)).toEqual({ count: 1, retryAfterSeconds: 1 }); // a new window
  });

  it('the window starts at the first failure (later failures do not extend it)', async () => {
    let now = 1_000_000;
    const store = new EmbeddedStore(tempDir(), { now: () => now });
    expect(await store.recordFailure('k', 60)).toEqual({ count: 1, retryAfterSeconds: 60 });
    now += 45_000;
    expect(await store.recordFailure('k', 60)).toEqual({ count: 2, retryAfterSeconds: 15 });
    now += 14_500;
    expect(await store.failures('k')).toEqual({ count: 2, retryAfterSeconds: 1 });
    now += 500;
    expect(await store.failures('k')).toEqual({ count: 0, retryAfterSeconds: 0 });
    expect(await store.recordFailure('k', 60)).toEqual({ count: 1, retryAfterSeconds: 60 });
  });

  it('resetFailures clears the window', async () => {
    const store = new EmbeddedStore(tempDir());
    await store.recordFailure('k', 60);
    await store.resetFailures('k');
    expect(await store.failures('k')).toEqual({ count: 0, retryAfterSeconds: 0 });
  });

  it('refuses a non-positive window', async () => {
    const store = new EmbeddedStore(tempDir());
    await expect(store.recordFailure('k', 0)).rejects.toThrow(RangeError);
    await expect(store.consumeOnce('k', -1)).rejects.toThrow(RangeError);
  });

  it('expired windows and markers are pruned from the file', async () => {
    let now = 1_000_000;
    const dir = tempDir();
    const store = new EmbeddedStore(dir, { now: () => now });
    await store.recordFailure('old-failure', 10);
    await store.consumeOnce('old-marker', 10);
    now += 11_000;
    await store.addKnownAddress('alice', '10.0.0.1'); // any write
    const text = fs.readFileSync(path.join(dir, 'stepup-store.json'), 'utf8');
    expect(text).not.toContain('old-failure');
    expect(text).not.toContain('old-marker');
  });
});

describe('EmbeddedStore: factors, addresses, consumeOnce', () => {
  it('stores, returns and deletes factors', async () => {
    const store = new EmbeddedStore(tempDir());
    expect(await store.getFactor('alice')).toBeUndefined();
    await store.setFactor('alice', factor());
    expect(await store.getFactor('alice')).toEqual(factor());
    await store.deleteFactor('alice');
    expect(await store.getFactor('alice')).toBeUndefined();
  });

  it('user ids are plain data (no prototype tricks)', async () => {
    const dir = tempDir();
    const store = new EmbeddedStore(dir);
    await store.setFactor('__proto__', factor(7));
    await store.acceptTimeStep('constructor', 3);
    expect(await store.getFactor('__proto__')).toEqual(factor(7));
    expect(await store.getFactor('toString')).toBeUndefined();
    expect(await new EmbeddedStore(dir).getFactor('__proto__')).toEqual(factor(7));
  });

  it('known addresses are a set per user', async () => {
    const store = new EmbeddedStore(tempDir());
    expect(await store.knownAddresses('alice')).toEqual([]);
    await store.addKnownAddress('alice', '192.0.2.1');
    await store.addKnownAddress('alice', '192.0.2.1');
    await store.addKnownAddress('alice', '2001:db8::1');
    expect([...(await store.knownAddresses('alice'))].sort()).toEqual(['192.0.2.1', '2001:db8::1']);
    expect(await store.knownAddresses('bob')).toEqual([]);
  });

  it('consumeOnce: true once within the ttl, then false; true again after expiry', async () => {
    const store = new EmbeddedStore(tempDir());
    const results = await Promise.all(Array.from({ length: 5 }, () => store.consumeOnce('challenge-1', 0.3)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.consumeOnce('challenge-1', 0.3)).toBe(false);
    expect(await store.consumeOnce('challenge-2', 0.3)).toBe(true);
    await sleep(400);
    expect(await store.consumeOnce('challenge-1', 0.3)).toBe(true);
  });

  it('ping and close resolve', async () => {
    const store = new EmbeddedStore(tempDir());
    await expect(store.ping()).resolves.toBeUndefined();
    await expect(store.close()).resolves.toBeUndefined();
  });
});

describe('EmbeddedStore: persistence', () => {
  it('a new instance on the same directory sees everything (restart)', async () => {
    const dir = tempDir();
    const a = new EmbeddedStore(dir);
    await a.setFactor('alice', factor());
    await a.acceptTimeStep('alice', 42);
    await a.recordFailure('alice', 60);
    await a.recordFailure('alice', 60);
    await a.addKnownAddress('alice', '192.0.2.1');
    expect(await a.consumeOnce('jti-1', 60)).toBe(true);
    await a.close();

    const b = new EmbeddedStore(dir);
    expect(await b.getFactor('alice')).toEqual(factor());
    expect(await b.acceptTimeStep('alice', 42)).toBe(false);
    expect(await b.acceptTimeStep('alice', 43)).toBe(true);
    expect((await b.failures('alice')).count).toBe(2);
    expect(await b.knownAddresses('alice')).toEqual(['192.0.2.1']);
    expect(await b.consumeOnce('jti-1', 60)).toBe(false);
  });

  it('creates the directory 0700 and the file 0600, atomically (no temp files left)', async () => {
    const dir = path.join(tempDir(), 'nested', 'store');
    const store = new EmbeddedStore(dir);
    await store.setFactor('alice', factor());
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'stepup-store.json')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['stepup-store.json']);
  });

  it('sees a write by another process (e.g. the enroll CLI) instead of overwriting it', async () => {
    const dir = tempDir();
    const app = new EmbeddedStore(dir);
    await app.acceptTimeStep('alice', 1);
    const cli = new EmbeddedStore(dir); // stands in for a second process
    await cli.setFactor('bob', factor(2));
    expect(await app.getFactor('bob')).toEqual(factor(2));
    await app.acceptTimeStep('alice', 2);
    expect(await new EmbeddedStore(dir).getFactor('bob')).toEqual(factor(2));
  });

  it('a corrupt file: starts empty, moves the bad file aside, warns once', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'stepup-store.json');
    fs.writeFileSync(file, '{"version":1,"factors":[["alice",');
    const writes: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const store = new EmbeddedStore(dir);
    vi.restoreAllMocks();
    expect(await store.getFactor('alice')).toBeUndefined();
    const aside = fs.readdirSync(dir).filter((f) => f.startsWith('stepup-store.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, aside[0] as string), 'utf8')).toBe('{"version":1,"factors":[["alice",');
    expect(fs.existsSync(file)).toBe(false);
    const warnings = writes.filter((w) => w.includes('unreadable'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^\[stepguard\] warn: .*\n$/);
    expect(warnings[0]?.split('\n')).toHaveLength(2); // one line

    await store.setFactor('alice', factor());
    expect(await new EmbeddedStore(dir).getFactor('alice')).toEqual(factor());
  });

  it.each([
    ['not JSON', 'garbage'],
    ['wrong version', '{"version":2}'],
    ['wrong shape', '{"version":1,"factors":{},"steps":[],"failures":[],"addresses":[],"once":[]}'],
    ['bad factor', '{"version":1,"factors":[["a",{"method":"sms"}]],"steps":[],"failures":[],"addresses":[],"once":[]}'],
  ])('corrupt variant (%s) → empty store', async (_label, content) => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'stepup-store.json'), content);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const store = new EmbeddedStore(dir);
    vi.restoreAllMocks();
    expect(await store.getFactor('a')).toBeUndefined();
    expect(fs.readdirSync(dir).some((f) => f.includes('.corrupt-'))).toBe(true);
  });

  it('a failed write surfaces as StoreUnavailableError', async () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions: make the file path a directory instead so the rename fails
      const dir = tempDir();
      const store = new EmbeddedStore(dir);
      fs.mkdirSync(path.join(dir, 'stepup-store.json'));
      fs.writeFileSync(path.join(dir, 'stepup-store.json', 'keep'), '');
      await expect(store.setFactor('alice', factor())).rejects.toBeInstanceOf(StoreUnavailableError);
      return;
    }
    const dir = tempDir();
    const store = new EmbeddedStore(dir);
    fs.chmodSync(dir, 0o500);
    try {
      await expect(store.setFactor('alice', factor())).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      fs.chmodSync(dir, 0o700);
    }
  });
});
