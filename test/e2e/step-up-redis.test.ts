/**
 * Step-up across instances: two processes of the bank app share a real redis-server (and STEPGUARD_SECRET).
 * A grant issued by one is honoured by the other; a code used on one is refused on the other. When Redis
 * goes away under traffic, operations that need a step-up fail closed with 503 while everything else keeps
 * serving, and they recover by themselves when Redis is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, startApp, type RunningApp } from '../helpers/app.js';
import { balanceOf, challengeOf, resetBank, Session } from '../helpers/bank.js';
import { PG_URL, requirePostgres, requireRedis } from '../helpers/services.js';

const BANK = join(REPO, 'examples/bank/app.cjs');
let redis: ChildProcess | undefined;
let redisPort: number;
let redisDir: string;
let one: RunningApp;
let two: RunningApp;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of this test's own, with an append-only file so its data survives a restart. */
async function startRedis(): Promise<void> {
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', redisDir], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 50; i++) {
    if (await new Promise<boolean>((resolve) => {
      const probe = spawn('redis-cli', ['-p', String(redisPort), 'ping'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      probe.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      probe.on('exit', () => resolve(out.includes('PONG')));
    })) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server did not start');
}

async function stopRedis(): Promise<void> {
  const child = redis;
  if (!child || child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireRedis()]);
  await resetBank();
  redisPort = await freePort();
  redisDir = mkdtempSync(join(tmpdir(), 'sg-redis-'));
  await startRedis();
  const env = {
    BANK_DB_URL: PG_URL,
    PORT: '0',
    BANK_SESSION_SECRET: 'shared-session-secret',
    STEPGUARD_MODE: 'block',
    STEPGUARD_RULES: join(REPO, 'examples/bank/rules.yaml'),
    STEPGUARD_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    STEPGUARD_SECRET: 'shared-secret-with-at-least-32-characters',
    STEPGUARD_STORE_DIR: mkdtempSync(join(tmpdir(), 'sg-store-')),
  };
  // Start one first so the bank table is created once.
  one = await startApp(BANK, { env });
  two = await startApp(BANK, { env });
});

afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()]);
  await stopRedis();
});

describe('two instances sharing Redis', () => {
  it('a grant issued by one instance is accepted by the other', async () => {
    const alice = await new Session(one, 'alice').login();
    await alice.enroll();
    const challenge = challengeOf(await alice.send('POST', '/transfer', { to: 'bob', amount: 10 }));
    expect((await alice.verify(challenge, alice.code())).status).toBe(200);
    const before = await balanceOf('alice');
    const onTwo = alice.on(two);
    expect((await onTwo.send('POST', '/transfer', { to: 'bob', amount: 10 })).status).toBe(200);
    expect(await balanceOf('alice')).toBe(before - 10);
  });

  it('a code used on one instance is refused on the other', async () => {
    const bob = await new Session(one, 'bob').login();
    await bob.enroll();
    const code = bob.code();
    expect((await bob.verify(challengeOf(await bob.send('POST', '/transfer', { to: 'alice', amount: 1 })), code)).status).toBe(200);
    const onTwo = bob.on(two);
    const replay = await onTwo.verify(challengeOf(await onTwo.send('POST', '/email', { email: 'b2@bank.example' })), code);
    expect(replay.status).toBe(401);
    expect((replay.json() as { detail: string }).detail).toContain('already used');
  });
});

describe('when Redis goes away under traffic', () => {
  it('fails step-up operations closed (503), keeps all other traffic working, and recovers', async () => {
    const carol = await new Session(one, 'carol').login();
    await carol.enroll();
    const before = await balanceOf('carol');

    // Background traffic that needs no step-up, across both instances, for the whole outage.
    let running = true;
    const background: number[] = [];
    const traffic = (async () => {
      while (running) {
        for (const app of [one, two]) background.push((await carol.on(app).send('GET', '/balance')).status);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    await stopRedis();
    for (const app of [one, two]) {
      const refused = await carol.on(app).send('POST', '/transfer', { to: 'bob', amount: 5 });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('content-type')).toBe('application/problem+json');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((refused.json() as { type: string }).type).toBe('urn:stepguard:problem:step-up-unavailable');
    }
    // The verification endpoint fails closed too.
    const verify = await carol.send('POST', '/.well-known/stepguard/step-up', { challenge_id: 'x.y', code: '123456' });
    expect([401, 503]).toContain(verify.status);
    expect(await balanceOf('carol')).toBe(before);

    await startRedis();
    // Each instance reconnects on its own backoff schedule: wait until both ask for a step-up again.
    for (const app of [one, two]) {
      let recovered = false;
      for (let i = 0; i < 50 && !recovered; i++) {
        const reply = await carol.on(app).send('POST', '/transfer', { to: 'bob', amount: 5 });
        if (reply.status === 401) recovered = true;
        else await new Promise((r) => setTimeout(r, 200));
      }
      expect(recovered).toBe(true);
    }
    const challenge = challengeOf(await carol.on(two).send('POST', '/transfer', { to: 'bob', amount: 5 }));
    expect((await carol.on(two).verify(challenge, carol.code())).status).toBe(200);
    expect((await carol.on(one).send('POST', '/transfer', { to: 'bob', amount: 5 })).status).toBe(200);
    expect(await balanceOf('carol')).toBe(before - 5);

    running = false;
    await traffic;
    expect(background.length).toBeGreaterThan(4);
    expect(background.every((s) => s === 200)).toBe(true);
  });
});
