/**
 * Passkey records and recovery codes in both stores: the embedded store (a temp directory) and Redis (the loopback
 * server of scripts/services.sh; fails loudly when it is down). Consumption and counter updates are checked under
 * concurrency, including two RedisStore clients racing like two app instances.
 */
import crypto from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../../src/stepup/embedded-store.js';
import { RedisStore } from '../../src/stepup/redis-store.js';
import { SecretBox } from '../../src/stepup/secret-box.js';
import type { StepUpStore, StoredCredential } from '../../src/stepup/store.js';
import { consumeRecoveryCode, hashRecoveryCode, issueRecoveryCodes, newRecoveryCodes, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from '../../src/stepup/recovery-codes.js';
import { REDIS_URL, requireRedis } from '../helpers/services.js';

const box = new SecretBox(crypto.randomBytes(32));
const credential = (id: string, counter = 0): StoredCredential => ({
  id,
  publicKey: crypto.randomBytes(77).toString('base64url'),
  counter,
  transports: [],
  userVerified: true,
  deviceType: 'singleDevice',
  createdAt: 1_700_000_000_000,
});

const opened: StepUpStore[] = [];
let prefix: string;
let raw: Redis;

beforeAll(async () => {
  await requireRedis();
  prefix = `sgtest:${crypto.randomUUID()}:`;
  raw = new Redis(REDIS_URL);
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  const keys = await raw.keys(`${prefix}*`);
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
});

const kinds: [string, () => [StepUpStore, StepUpStore]][] = [
  [
    'embedded',
    () => {
      const s = new EmbeddedStore(mkdtempSync(join(tmpdir(), 'sg-factors-')));
      opened.push(s);
      return [s, s];
    },
  ],
  [
    'redis (two clients)',
    () => {
      const a = new RedisStore(REDIS_URL, { keyPrefix: prefix });
      const b = new RedisStore(REDIS_URL, { keyPrefix: prefix });
      opened.push(a, b);
      return [a, b];
    },
  ],
];

describe('recovery codes (pure)', () => {
  it('issues ten distinct XXXXX-XXXXX codes and reads typed input leniently', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
    expect(new Set(codes).size).toBe(RECOVERY_CODE_COUNT);
    for (const c of codes) expect(c).toMatch(/^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
    expect(normalizeRecoveryCode('abcde-fghjk')).toBe('ABCDEFGHJK');
    expect(normalizeRecoveryCode('ABCDE FGHJK')).toBe('ABCDEFGHJK');
    expect(normalizeRecoveryCode('oOiIl-22222')).toBe('00111' + '22222');
    expect(normalizeRecoveryCode('123456')).toBeUndefined();
    expect(normalizeRecoveryCode('ABCDE-FGHJU')).toBeUndefined(); // U is not in the alphabet
    expect(normalizeRecoveryCode('A'.repeat(5000))).toBeUndefined();
  });

  it('hashes are keyed and bound to the user', () => {
    const other = new SecretBox(crypto.randomBytes(32));
    const h = hashRecoveryCode(box, 'alice', 'ABCDEFGHJK');
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(h).not.toContain('ABCDEFGHJK');
    expect(hashRecoveryCode(box, 'bob', 'ABCDEFGHJK')).not.toBe(h);
    expect(hashRecoveryCode(other, 'alice', 'ABCDEFGHJK')).not.toBe(h);
  });
});

describe.each(kinds)('%s store', (_name, open) => {
  it('stores only hashes; each code works exactly once, even when sent 20 times at once', async () => {
    const [a, b] = open();
    const user = `u-${crypto.randomUUID()}`;
    const codes = await issueRecoveryCodes(a, box, user);
    expect(await b.recoveryCodesLeft(user)).toBe(10);
    const attempts = await Promise.all(Array.from({ length: 20 }, (_, i) => consumeRecoveryCode(i % 2 ? a : b, box, user, codes[3]!.toLowerCase())));
    expect(attempts.filter(Boolean)).toHaveLength(1);
    expect(await a.recoveryCodesLeft(user)).toBe(9);
    expect(await consumeRecoveryCode(b, box, user, codes[3]!)).toBe(false);
    expect(await consumeRecoveryCode(b, box, user, 'ZZZZZ-ZZZZZ')).toBe(false);
    // Another user's code does not work for this one.
    const other = `u-${crypto.randomUUID()}`;
    const theirs = await issueRecoveryCodes(a, box, other);
    expect(await consumeRecoveryCode(a, box, user, theirs[0]!)).toBe(false);
    // Regenerating replaces every old code.
    const fresh = await issueRecoveryCodes(b, box, user);
    expect(await consumeRecoveryCode(a, box, user, codes[0]!)).toBe(false);
    expect(await consumeRecoveryCode(a, box, user, fresh[0]!)).toBe(true);
    expect(await a.recoveryCodesLeft(user)).toBe(9);
  });

  it('keeps passkeys per user and advances the signature counter only forward, atomically', async () => {
    const [a, b] = open();
    const user = `u-${crypto.randomUUID()}`;
    expect(await a.credentials(user)).toEqual([]);
    await a.addCredential(user, credential('cred-1', 5));
    await b.addCredential(user, { ...credential('cred-2'), transports: ['internal', 'hybrid'], deviceType: 'multiDevice' });
    const list = await b.credentials(user);
    expect(list.map((c) => c.id).sort()).toEqual(['cred-1', 'cred-2']);
    expect(list.find((c) => c.id === 'cred-2')).toMatchObject({ transports: ['internal', 'hybrid'], deviceType: 'multiDevice', counter: 0 });

    expect(await a.advanceCounter(user, 'cred-1', 4)).toBe(false); // a decrease: a cloned authenticator
    expect(await a.advanceCounter(user, 'cred-1', 5)).toBe(false); // no increase
    // Ten concurrent assertions with the same counter: one wins.
    const raced = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).advanceCounter(user, 'cred-1', 6)));
    expect(raced.filter(Boolean)).toHaveLength(1);
    expect((await b.credentials(user)).find((c) => c.id === 'cred-1')!.counter).toBe(6);
    // An authenticator without a counter (always 0) keeps working.
    expect(await a.advanceCounter(user, 'cred-2', 0)).toBe(true);
    expect(await a.advanceCounter(user, 'unknown', 9)).toBe(false);
    expect(await a.advanceCounter(`u-${crypto.randomUUID()}`, 'cred-1', 9)).toBe(false);
  });
});

describe('redis key layout', () => {
  it('per-user keys carry a hash tag for Redis Cluster: stepguard:{u:<user>}:…', async () => {
    const s = new RedisStore(REDIS_URL);
    opened.push(s);
    const user = `u-${crypto.randomUUID()}`;
    await s.addCredential(user, credential('cred-x'));
    await s.setRecoveryCodes(user, ['h1', 'h2']);
    const keys = (await raw.keys(`stepguard:{u:${user}}:*`)).sort();
    expect(keys).toEqual([`stepguard:{u:${user}}:recovery`, `stepguard:{u:${user}}:webauthn`, `stepguard:{u:${user}}:webauthn-counter`]);
    await raw.del(...keys);
  });
});
