/**
 * The verification endpoint under attack (issue #10 part A), against both stores: the embedded store (one app)
 * and Redis (two app instances sharing one Redis, requests spread over both). Each case is an attack that worked
 * before: parallel bursts past the attempt limit, locking out an address by replaying a challenge without its
 * session, a lockout shorter than configured, a body that reset the connection, cross-site/non-JSON posts, an
 * instance holding another key answering 500, and a no-identity refusal recorded as `challenged`.
 *
 * Every request comes from the test over loopback, which the apps trust as a proxy (STEPGUARD_TRUSTED_PROXIES), so
 * each case picks its own client address with X-Forwarded-For and the per-address counters of one case never
 * touch another's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { REPO, call, startApp, type Reply, type RunningApp } from '../helpers/app.js';
import { VERIFY, burstReport, challengeOf, codesChecked, logFlushed, resetBank, secrets, Session, wrongCodes } from '../helpers/bank.js';
import { PG_URL, REDIS_URL, requirePostgres, requireRedis } from '../helpers/services.js';
import { SecretBox } from '../../src/stepup/secret-box.js';

const BANK = join(REPO, 'examples/bank/app.cjs');
const SECRET = 'attack-suite-secret-with-at-least-32-characters';
const OTHER_SECRET = 'an-operator-shell-secret-of-at-least-32-chars';
const LIMIT = 5;
const LOCKOUT_SECONDS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Deployment {
  /** The instances requests are spread over (one for the embedded store). */
  apps: RunningApp[];
  /** `stepguard enroll --replace` on the same store; a secret of its own goes to the authenticator. */
  cliEnroll(user: string, secret: string): Promise<string>;
  findingsFiles: string[];
  stop(): Promise<void>;
}

function baseEnv(extra: Record<string, string>): Record<string, string> {
  return {
    BANK_DB_URL: PG_URL,
    PORT: '0',
    BANK_SESSION_SECRET: 'attack-suite-session-secret',
    STEPGUARD_MODE: 'block',
    STEPGUARD_RULES: join(REPO, 'examples/bank/rules.yaml'),
    STEPGUARD_SECRET: SECRET,
    STEPGUARD_MAX_ATTEMPTS_PER_USER: String(LIMIT),
    STEPGUARD_MAX_ATTEMPTS_PER_CLIENT: '12',
    STEPGUARD_LOCKOUT_SECONDS: String(LOCKOUT_SECONDS),
    STEPGUARD_TRUSTED_PROXIES: '127.0.0.1,::1',
    ...extra,
  };
}

async function embedded(): Promise<Deployment> {
  const storeDir = mkdtempSync(join(tmpdir(), 'sg-attacks-store-'));
  const findings = join(mkdtempSync(join(tmpdir(), 'sg-attacks-log-')), 'findings.jsonl');
  const app = await startApp(BANK, { env: baseEnv({ STEPGUARD_STORE_DIR: storeDir, STEPGUARD_FINDINGS_FILE: findings }) });
  return {
    apps: [app],
    findingsFiles: [findings],
    cliEnroll: (user, secret) => cliEnroll(['--store-dir', storeDir], user, secret),
    stop: () => app.stop(),
  };
}

async function redis(): Promise<Deployment> {
  const url = `${REDIS_URL}/9`;
  const admin = new Redis(url);
  await admin.flushdb();
  await admin.quit();
  const dir = mkdtempSync(join(tmpdir(), 'sg-attacks-log-'));
  const files = [join(dir, 'one.jsonl'), join(dir, 'two.jsonl')];
  const env = (i: number) =>
    baseEnv({ STEPGUARD_REDIS_URL: url, STEPGUARD_STORE_DIR: mkdtempSync(join(tmpdir(), 'sg-attacks-store-')), STEPGUARD_FINDINGS_FILE: files[i] ?? join(dir, 'x.jsonl') });
  const one = await startApp(BANK, { env: env(0) });
  const two = await startApp(BANK, { env: env(1) });
  return {
    apps: [one, two],
    findingsFiles: files,
    cliEnroll: (user, secret) => cliEnroll(['--redis', url], user, secret),
    stop: async () => {
      await Promise.all([one.stop(), two.stop()]);
    },
  };
}

/** Runs `stepguard enroll <user> --replace` with STEPGUARD_SECRET=`secret`; returns the new TOTP secret. */
function cliEnroll(storeArgs: string[], user: string, secret: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [join(REPO, 'dist/src/cli/main.js'), 'enroll', user, '--replace', ...storeArgs],
      { env: { ...process.env, STEPGUARD_SECRET: secret }, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const uri = /otpauth:\/\/totp\/[^\s]+/.exec(stdout)?.[0];
        if (error || !uri) return reject(new Error(`stepguard enroll failed: ${stderr}`));
        const totp = new URL(uri).searchParams.get('secret')!;
        secrets.set(user, totp);
        resolve(totp);
      },
    ),
  );
}

/** A browser of `user` whose requests reach the app from `address` (through the trusted loopback "proxy"). */
class Client extends Session {
  constructor(
    app: RunningApp,
    user: string,
    readonly address: string,
  ) {
    super(app, user);
  }
  override send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    return super.send(method, path, body, { 'x-forwarded-for': this.address, ...headers });
  }
  at(app: RunningApp): Client {
    const twin = new Client(app, this.user, this.address);
    twin.cookies = this.cookies;
    return twin;
  }
}

const typeOf = (r: Reply) => (r.json() as { type: string }).type;

function attackSuite(name: string, deploy: () => Promise<Deployment>): void {
  describe(name, () => {
    let d: Deployment;
    const app = (i: number) => d.apps[i % d.apps.length]!;

    beforeAll(async () => {
      d = await deploy();
    }, 60_000);
    afterAll(async () => {
      await d?.stop();
    });

    async function enrolled(user: string, address: string): Promise<Client> {
      const c = await new Client(app(0), user, address).login();
      await c.enroll();
      return c;
    }

    it('a parallel burst of 40 on one challenge checks at most the limit, and the right code after it gets 429', async () => {
      const alice = await enrolled('alice', '10.1.0.1');
      const challenge = challengeOf(await alice.send('POST', '/transfer', { to: 'bob', amount: 1 }));
      const wrong = wrongCodes('alice', 39);
      const burst = wrong.map((code, i) => alice.at(app(i)).verify(challenge, code));
      burst.push(alice.at(app(1)).verify(challenge, alice.code()));
      const replies = await Promise.all(burst);
      const statuses = replies.map((r) => r.status);
      await Promise.all(d.apps.map(logFlushed));
      expect(codesChecked(d.apps, 'alice'), burstReport(replies, d.apps, 'alice')).toBeLessThanOrEqual(LIMIT);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(40 - LIMIT);
      expect(statuses.every((s) => s === 401 || s === 429 || s === 200)).toBe(true);
      const granted = statuses.filter((s) => s === 200).length;
      // The right code was last in the burst: it only got through if it was among the first `limit` checked.
      expect(granted).toBeLessThanOrEqual(1);
      if (granted === 0) {
        const after = await alice.at(app(0)).verify(challenge, alice.code(1));
        expect(after.status).toBe(429);
        expect(after.headers.get('set-cookie')).toBeNull();
        expect((await alice.send('POST', '/transfer', { to: 'bob', amount: 1 })).status).toBe(401);
      }
    });

    it('200 wrong codes at once across the instances: exactly the limit is checked', async () => {
      const bob = await enrolled('bob', '10.1.0.2');
      const challenge = challengeOf(await bob.send('POST', '/transfer', { to: 'alice', amount: 1 }));
      const replies = await Promise.all(wrongCodes('bob', 200).map((code, i) => bob.at(app(i)).verify(challenge, code)));
      await Promise.all(d.apps.map(logFlushed));
      expect(codesChecked(d.apps, 'bob'), burstReport(replies, d.apps, 'bob')).toBe(LIMIT);
      expect(replies.filter((r) => r.status === 401).length).toBeLessThanOrEqual(LIMIT);
      expect(replies.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(200 - LIMIT);
      const locked = await bob.verify(challenge, bob.code());
      expect(locked.status).toBe(429);
    });

    it('a success does not erase failures recorded in parallel', async () => {
      const carol = await enrolled('carol', '10.1.0.3');
      const challenge = challengeOf(await carol.send('POST', '/transfer', { to: 'bob', amount: 1 }));
      // 3 failures + the right code at once, then 2 more failures: the limit of 5 is reached → the next is refused.
      const first = await Promise.all([...wrongCodes('carol', 3).map((c, i) => carol.at(app(i)).verify(challenge, c)), carol.at(app(1)).verify(challenge, carol.code())]);
      expect(first.filter((r) => r.status === 200)).toHaveLength(1);
      const challenge2 = challengeOf(await carol.send('POST', '/email', { email: 'c2@bank.example' }));
      const more = wrongCodes('carol', 5).slice(3);
      expect((await carol.verify(challenge2, more[0]!)).status).toBe(401);
      expect((await carol.at(app(1)).verify(challenge2, more[1]!)).status).toBe(429);
      expect((await carol.verify(challenge2, carol.code(1))).status).toBe(429);
    });

    it('replaying a challenge without its session costs nothing and locks out nobody at the same address', async () => {
      const dave = await enrolled('dave', '10.2.0.1');
      const challenge = challengeOf(await dave.send('POST', '/transfer', { to: 'bob', amount: 1 }));
      // The same person (or anyone behind the same address) without the session cookie, 20 times, both instances.
      for (let i = 0; i < 20; i++) {
        const stranger = new Client(app(i), 'dave', '10.2.0.1');
        const reply = await stranger.verify(challenge, wrongCodes('dave', 1)[0]!);
        expect(reply.status).toBe(403);
        expect(typeOf(reply)).toBe('urn:stepguard:problem:challenge-mismatch');
      }
      await Promise.all(d.apps.map(logFlushed));
      expect(codesChecked(d.apps, 'dave')).toBe(0);
      // Another user at the same address is not locked out…
      const erin = await enrolled('erin', '10.2.0.1');
      const erinChallenge = challengeOf(await erin.send('POST', '/transfer', { to: 'bob', amount: 1 }));
      expect((await erin.at(app(1)).verify(erinChallenge, erin.code())).status).toBe(200);
      // …and neither is the owner of the challenge.
      expect((await dave.verify(challenge, dave.code())).status).toBe(200);
    });

    it('the per-address limit still stops one address guessing across accounts', async () => {
      const address = '10.2.0.9';
      for (const user of ['frank', 'grace', 'heidi']) {
        const c = await enrolled(user, address);
        const challenge = challengeOf(await c.send('POST', '/transfer', { to: 'bob', amount: 1 }));
        for (const code of wrongCodes(user, 4)) await c.verify(challenge, code);
      }
      // 12 codes guessed from this address: the next user there is refused, even with the right code…
      const ivan = await enrolled('ivan', address);
      const challenge = challengeOf(await ivan.send('POST', '/transfer', { to: 'bob', amount: 1 }));
      expect((await ivan.verify(challenge, ivan.code())).status).toBe(429);
      // …while the same user from another address passes (their own counter is untouched).
      const elsewhere = new Client(app(1), 'ivan', '10.2.0.10');
      elsewhere.cookies = ivan.cookies;
      expect((await elsewhere.verify(challenge, ivan.code())).status).toBe(200);
    });

    it('a lockout lasts the configured window from the moment it starts', async () => {
      const judy = await enrolled('judy', '10.3.0.1');
      const challenge = challengeOf(await judy.send('POST', '/transfer', { to: 'bob', amount: 1 }));
      const wrong = wrongCodes('judy', LIMIT);
      for (let i = 0; i < LIMIT - 1; i++) expect((await judy.at(app(i)).verify(challenge, wrong[i]!)).status).toBe(401);
      await sleep(4_500); // most of the first failure's window is gone
      const locking = await judy.at(app(1)).verify(challenge, wrong[LIMIT - 1]!);
      expect(locking.status).toBe(429);
      expect(Number(locking.headers.get('retry-after'))).toBeGreaterThanOrEqual(LOCKOUT_SECONDS - 1);
      await sleep(3_000); // past the end of the first failure's window: still locked
      const still = await judy.verify(challenge, judy.code());
      expect(still.status).toBe(429);
      expect(Number(still.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      await sleep((Number(still.headers.get('retry-after')) + 1) * 1000);
      expect((await judy.verify(challenge, judy.code(1))).status).toBe(200);
    }, 30_000);

    it('an oversized body gets a 413 problem, not a reset connection', async () => {
      const big = JSON.stringify({ challenge_id: 'x'.repeat(64 * 1024), code: '123456' });
      const declared = await call(app(0), 'POST', VERIFY, { raw: big, headers: { 'content-type': 'application/json' } });
      expect(declared.status).toBe(413);
      expect(declared.headers.get('content-type')).toBe('application/problem+json');
      expect(typeOf(declared)).toBe('urn:stepguard:problem:bad-request');
      // Chunked, no Content-Length: the limit is found while reading.
      const chunked = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const target = app(1);
        const req = http.request({ host: '127.0.0.1', port: target.port, path: VERIFY, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
        });
        req.on('error', reject);
        for (let i = 0; i < 16; i++) req.write('x'.repeat(4096));
        req.end();
      });
      expect(chunked.status).toBe(413);
      expect(chunked.type).toBe('application/problem+json');
      expect(JSON.parse(chunked.body)).toMatchObject({ status: 413 });
    });

    it('only JSON, and never from another site', async () => {
      const body = JSON.stringify({ challenge_id: 'not-a-challenge', code: '123456' });
      const post = (headers: Record<string, string>) => call(app(0), 'POST', VERIFY, { raw: body, headers });
      for (const type of ['text/plain', 'multipart/form-data; boundary=x', 'application/jsonx']) {
        const reply = await post({ 'content-type': type });
        expect(reply.status).toBe(415);
        expect(reply.headers.get('content-type')).toBe('application/problem+json');
      }
      // A form post is the verification page's code form, which has its own CSRF token: without it, refused
      // before any code is looked at (a cross-site HTML form cannot carry the token).
      const form = await post({ 'content-type': 'application/x-www-form-urlencoded' });
      expect(form.status).toBe(403);
      expect(form.text).toMatch(/form expired or was not sent from this page/);
      expect((await post({})).status).toBe(415);
      const json = { 'content-type': 'application/json; charset=utf-8' };
      const cross = await post({ ...json, 'sec-fetch-site': 'cross-site' });
      expect(cross.status).toBe(403);
      expect(typeOf(cross)).toBe('urn:stepguard:problem:bad-request');
      for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${app(0).port + 1}`, `http://localhost:${app(0).port}`]) {
        expect((await post({ ...json, origin })).status).toBe(403);
      }
      // Same origin, same site, or no browser headers at all: on to the real checks (an invalid challenge here).
      expect((await post({ ...json, origin: `http://127.0.0.1:${app(0).port}`, 'sec-fetch-site': 'same-origin' })).status).toBe(401);
      expect((await post(json)).status).toBe(401);
    });

    it('a secret sealed with another key: 503 step-up-unavailable, and the missing key named once', async () => {
      // An operator enrolled dave with the CLI under another STEPGUARD_SECRET: the apps cannot decrypt his secret.
      await d.cliEnroll('dave', OTHER_SECRET);
      const dave = new Client(app(0), 'dave', '10.4.0.1');
      await dave.login();
      const challenge = challengeOf(await dave.send('POST', '/transfer', { to: 'bob', amount: 1 }));
      for (let i = 0; i < LIMIT + 1; i++) {
        const reply = await dave.at(app(0)).verify(challenge, dave.code());
        expect(reply.status).toBe(503);
        expect(typeOf(reply)).toBe('urn:stepguard:problem:step-up-unavailable');
      }
      const sealedWith = SecretBox.fromSecret(OTHER_SECRET, '/nonexistent').box.keyId;
      const holds = SecretBox.fromSecret(SECRET, '/nonexistent').box.keyId;
      const lines = app(0).stderr().split('\n').filter((l) => l.includes(`sealed with key ${sealedWith}`));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`this instance has key ${holds}`);
      // Fixed by enrolling again with the deployment's key; the refused attempts were given back (more than the limit).
      await d.cliEnroll('dave', SECRET);
      const fixed = await dave.verify(challenge, dave.code());
      expect(fixed.status, `verification after enrolling again: ${fixed.status === 200 ? '' : fixed.text}`).toBe(200);
    }, 30_000);

    it('a no-identity request refused with 403 is recorded as blocked, not challenged', async () => {
      const anonymous = await call(app(0), 'POST', '/support/email', { body: { user: 'alice', email: 'mallory@evil.example' } });
      expect(anonymous.status).toBe(403);
      expect(typeOf(anonymous)).toBe('urn:stepguard:problem:authentication-required');
      const file = d.findingsFiles[0]!;
      let findings: Array<Record<string, unknown>> = [];
      for (let i = 0; i < 50 && findings.length === 0; i++) {
        await sleep(100);
        if (!existsSync(file)) continue;
        findings = readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((r) => r.event === 'finding' && r['security_rule.name'] === 'email-change-step-up' && r['user.id'] === undefined);
      }
      expect(findings.length).toBeGreaterThan(0);
      expect(findings.map((r) => r['stepguard.outcome'])).toEqual(findings.map(() => 'blocked'));
      // The same attributes feed the span and the metrics (one telemetry call); the stderr line says it too.
      expect(findings.every((r) => r.status === 'error')).toBe(true);
      expect(app(0).stderr()).toMatch(/policy blocked rule=email-change-step-up/);
    });
  });
}

beforeAll(async () => {
  await Promise.all([requirePostgres(), requireRedis()]);
  await resetBank();
});

attackSuite('embedded store (one instance)', embedded);
attackSuite('Redis store (two instances sharing one Redis)', redis);
