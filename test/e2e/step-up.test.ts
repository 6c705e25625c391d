/**
 * Step-up end to end: the bank example under the agent, real PostgreSQL holding the balances, real HTTP.
 * A transfer is refused with an RFC 9470 challenge until the user proves a TOTP code; the retry with the
 * grant succeeds and the UPDATE runs exactly once. Then every way to cheat is tried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logged, REPO, startApp, type RunningApp } from '../helpers/app.js';
import { balanceOf, challengeOf, grants, resetBank, secrets, Session, usedCodes, VERIFY } from '../helpers/bank.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';
import { StatementLog } from '../helpers/db.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

const BANK = join(REPO, 'examples/bank/app.cjs');
const receiver = new OtlpReceiver();
let app: RunningApp;
let storeDir: string;


beforeAll(async () => {
  await requirePostgres();
  await resetBank();
  const otlp = await receiver.start();
  storeDir = mkdtempSync(join(tmpdir(), 'sg-store-'));
  // The e-mail rule gets a 2-second grant here, so that expiry can be tested without waiting minutes.
  const shortRules = join(storeDir, 'short.yaml');
  writeFileSync(
    shortRules,
    [
      'ruleset: bank-test',
      'rules:',
      '  - id: email-change-step-up',
      '    title: E-mail change needs a fresh verification',
      '    category: sensitive-operation',
      '    when: { sink: sql, statement: "UPDATE accounts SET email *" }',
      '    action: step_up',
      '    step_up: { max_age: 2 }',
      '',
    ].join('\n'),
  );
  app = await startApp(BANK, {
    env: {
      BANK_DB_URL: PG_URL,
      PORT: '0',
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: `${join(REPO, 'examples/bank/rules.yaml')},${shortRules}`,
      STEPGUARD_STORE_DIR: storeDir,
      STEPGUARD_SECRET: 'test-secret-with-at-least-32-characters!!',
      STEPGUARD_MAX_ATTEMPTS_PER_USER: '4',
      STEPGUARD_LOCKOUT_SECONDS: '60',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    },
  });
});

afterAll(async () => {
  await app?.stop();
  await receiver.stop();
});

describe('a transfer that needs a step-up', () => {
  it('is challenged (RFC 9470), never runs, then runs exactly once after a verified code', async () => {
    const alice = await new Session(app, 'alice').login();
    await alice.enroll();
    const before = await balanceOf('alice');
    const log = new StatementLog('pg');
    log.mark();

    const first = await alice.send('POST', '/transfer', { to: 'bob', amount: 100 });
    expect(first.status).toBe(401);
    expect(first.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A fresh one-time-password verification is required for this operation", acr_values="urn:stepguard:acr:otp", max_age="300"',
    );
    expect(first.headers.get('content-type')).toBe('application/problem+json');
    const problem = first.json() as Record<string, unknown>;
    expect(problem).toMatchObject({
      type: 'urn:stepguard:problem:step-up-required',
      title: 'Step-up authentication required',
      status: 401,
      error: 'insufficient_user_authentication',
      acr_values: 'urn:stepguard:acr:otp',
      max_age: 300,
      verify_uri: VERIFY,
    });
    expect(typeof problem.challenge_id).toBe('string');
    expect(typeof problem.detail).toBe('string');
    await new Promise((r) => setTimeout(r, 50));
    expect(log.since()).not.toContain('UPDATE accounts SET balance');
    expect(await balanceOf('alice')).toBe(before);

    const verified = await alice.verify(problem.challenge_id as string, alice.code());
    expect(verified.status).toBe(200);
    const body = verified.json() as { grant: string; expires_in: number; token_type: string; scope: string };
    expect(body.expires_in).toBe(300);
    expect(body.scope).toBe('transfer-step-up');
    expect(verified.headers.getSetCookie().join()).toMatch(/^sg_grant\.transfer-step-up=[^;]+; Path=\/; Max-Age=300; HttpOnly; SameSite=Strict/);

    log.mark();
    const retry = await alice.send('POST', '/transfer', { to: 'bob', amount: 100 });
    expect(retry.status).toBe(200);
    expect(await balanceOf('alice')).toBe(before - 100);
    await new Promise((r) => setTimeout(r, 50));
    expect(log.since().split('UPDATE accounts SET balance = balance - $1').length - 1).toBe(1);

    // The grant is reusable for its scope until it expires (one transfer runs two statements; a second one too).
    const again = await alice.send('POST', '/transfer', { to: 'bob', amount: 1 }, { 'stepguard-grant': body.grant });
    expect(again.status).toBe(200);
  });

  it('accepts the grant from the Stepguard-Grant header instead of the cookie', async () => {
    const dave = await new Session(app, 'dave').login();
    await dave.enroll();
    const challenge = challengeOf(await dave.send('POST', '/transfer', { to: 'bob', amount: 5 }));
    const { grant } = (await dave.verify(challenge, dave.code())).json() as { grant: string };
    dave.cookies.delete('sg_grant.transfer-step-up');
    expect((await dave.send('POST', '/transfer', { to: 'bob', amount: 5 })).status).toBe(401);
    expect((await dave.send('POST', '/transfer', { to: 'bob', amount: 5 }, { 'stepguard-grant': grant })).status).toBe(200);
  });
});

describe('what an attacker (or a mistake) gets', () => {
  it('a wrong code: 401, and no grant', async () => {
    const bob = await new Session(app, 'bob').login();
    await bob.enroll();
    const challenge = challengeOf(await bob.send('POST', '/transfer', { to: 'alice', amount: 1 }));
    const correct = bob.code();
    const wrong = String((Number(correct) + 1) % 1_000_000).padStart(6, '0');
    const reply = await bob.verify(challenge, wrong);
    expect(reply.status).toBe(401);
    expect((reply.json() as { type: string }).type).toBe('urn:stepguard:problem:invalid-code');
    expect((await bob.verify(challenge, 'abcdef')).status).toBe(401);
  });

  it('a used code replayed: refused', async () => {
    const erin = await new Session(app, 'erin').login();
    await erin.enroll();
    const code = erin.code();
    expect((await erin.verify(challengeOf(await erin.send('POST', '/transfer', { to: 'bob', amount: 1 })), code)).status).toBe(200);
    erin.cookies.delete('sg_grant.transfer-step-up');
    const replay = await erin.verify(challengeOf(await erin.send('POST', '/transfer', { to: 'bob', amount: 1 })), code);
    expect(replay.status).toBe(401);
    expect((replay.json() as { detail: string }).detail).toContain('already used');
  });

  it('five parallel verifications of one code: exactly one grant', async () => {
    const frank = await new Session(app, 'frank').login();
    await frank.enroll();
    const challenges = await Promise.all(Array.from({ length: 5 }, () => frank.send('POST', '/transfer', { to: 'bob', amount: 1 }).then(challengeOf)));
    const code = frank.code();
    const replies = await Promise.all(challenges.map((c) => frank.verify(c, code)));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(1);
    // The others are replays: refused, and counted as failures (the last ones may already hit the lockout).
    expect(replies.filter((r) => r.status === 401 || r.status === 429)).toHaveLength(4);
  });

  it('too many failures: 429 with Retry-After, and even a correct code is refused during the lockout', async () => {
    const grace = await new Session(app, 'grace').login();
    await grace.enroll();
    const challenge = challengeOf(await grace.send('POST', '/transfer', { to: 'bob', amount: 1 }));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await grace.verify(challenge, '000000')).status);
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses[3]).toBe(429);
    const locked = await grace.verify(challenge, grace.code());
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  });

  it('an expired grant: a fresh challenge', async () => {
    const heidi = await new Session(app, 'heidi').login();
    await heidi.enroll();
    const challenge = challengeOf(await heidi.send('POST', '/email', { email: 'h1@bank.example' }));
    expect((await heidi.verify(challenge, heidi.code())).status).toBe(200);
    expect((await heidi.send('POST', '/email', { email: 'h2@bank.example' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 3100));
    const expired = await heidi.send('POST', '/email', { email: 'h3@bank.example' });
    expect(expired.status).toBe(401);
    expect(challengeOf(expired)).not.toBe(challenge);
  });

  it("user A's grant presented by user B: refused", async () => {
    const alice = await new Session(app, 'alice').login();
    const challenge = challengeOf(await alice.send('POST', '/transfer', { to: 'carol', amount: 1 }));
    const { grant } = (await alice.verify(challenge, alice.code(1))).json() as { grant: string };
    const bob = await new Session(app, 'bob').login();
    const before = await balanceOf('bob');
    const stolen = await bob.send('POST', '/transfer', { to: 'carol', amount: 50 }, { 'stepguard-grant': grant });
    expect(stolen.status).toBe(401);
    expect(await balanceOf('bob')).toBe(before);
  });

  it("a challenge verified from another user's session: refused", async () => {
    const ivan = await new Session(app, 'ivan').login();
    await ivan.enroll();
    const challenge = challengeOf(await ivan.send('POST', '/transfer', { to: 'bob', amount: 1 }));
    const mallory = await new Session(app, 'bob').login();
    const reply = await mallory.send('POST', VERIFY, { challenge_id: challenge, code: ivan.code() });
    expect(reply.status).toBe(403);
    expect((reply.json() as { type: string }).type).toBe('urn:stepguard:problem:challenge-mismatch');
  });

  it('a tampered grant: refused', async () => {
    const dave = await new Session(app, 'dave').login();
    const challenge = challengeOf(await dave.send('POST', '/transfer', { to: 'bob', amount: 1 }));
    const { grant } = (await dave.verify(challenge, dave.code(1))).json() as { grant: string };
    dave.cookies.clear();
    await dave.login();
    const [payload, sig] = grant.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, exp: (claims.exp as number) + 86_400 })).toString('base64url') + '.' + sig;
    expect((await dave.send('POST', '/transfer', { to: 'bob', amount: 1 }, { 'stepguard-grant': forged })).status).toBe(401);
    expect((await dave.send('POST', '/transfer', { to: 'bob', amount: 1 }, { 'stepguard-grant': grant.slice(0, -2) + 'xx' })).status).toBe(401);
  });

  it('a grant for one rule does not satisfy another', async () => {
    const alice = await new Session(app, 'alice').login();
    const transferGrant = grants[0]!; // alice's transfer grant from the first test
    const reply = await alice.send('POST', '/email', { email: 'mallory@evil.example' }, { 'stepguard-grant': transferGrant });
    expect(reply.status).toBe(401);
    expect((reply.json() as { challenge_id: string }).challenge_id).toBeTruthy();
  });

  it('a user with no enrolled factor: told so, not given a challenge they cannot answer', async () => {
    const carol = await new Session(app, 'carol').login();
    const reply = await carol.send('POST', '/transfer', { to: 'bob', amount: 1 });
    expect(reply.status).toBe(403);
    expect(reply.json()).toMatchObject({ type: 'urn:stepguard:problem:enrollment-required', status: 403 });
  });

  it('no identity at all: refused with 403 and a finding', async () => {
    const anonymous = new Session(app, 'nobody');
    const reply = await anonymous.send('POST', '/support/email', { user: 'alice', email: 'mallory@evil.example' });
    expect(reply.status).toBe(403);
    expect((reply.json() as { type: string }).type).toBe('urn:stepguard:problem:authentication-required');
    await logged(app, /policy refused|step-up refused rule=email-change-step-up/);
  });

  it('re-enrolling an enrolled user needs a fresh step-up, and then replaces the factor', async () => {
    const bob = await new Session(app, 'bob').login();
    const reply = await bob.send('POST', '/mfa/enroll?replace=1');
    expect(reply.status).toBe(401);
    const challenge = challengeOf(reply);
    expect(challenge).toBeTruthy();
    expect((await bob.send('POST', '/mfa/enroll')).status).toBe(409);

    const verified = await bob.verify(challenge, bob.code());
    expect(verified.status).toBe(200);
    expect((verified.json() as { scope: string }).scope).toBe('stepguard.enroll');
    const oldSecret = secrets.get('bob')!;
    const newSecret = await bob.enrollReplacing();
    expect(newSecret).not.toBe(oldSecret);
  });
});

describe('enrolling from the command line', () => {
  it('`stepguard enroll <user>` prints the otpauth URI, a QR code and the secret; the running app accepts codes from it', async () => {
    // Run the CLI without blocking this process: a synchronous spawn froze the test's event loop for seconds on a
    // loaded machine, so the app closed the idle keep-alive socket unseen and the next request failed on it.
    const { execFile } = await import('node:child_process');
    const enroll = () =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'enroll', 'judy', '--store-dir', storeDir], { env: { ...process.env, STEPGUARD_SECRET: 'test-secret-with-at-least-32-characters!!' }, encoding: 'utf8' }, (error, stdout, stderr) =>
          resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
        ),
      );
    const enrolled = await enroll();
    expect(enrolled.status).toBe(0);
    const uri = /otpauth:\/\/totp\/[^\s]+/.exec(enrolled.stdout)?.[0];
    expect(uri).toBeDefined();
    expect(enrolled.stdout).toMatch(/[█▀▄]/); // the QR code for the terminal
    const secret = new URL(uri!).searchParams.get('secret')!;
    expect(enrolled.stdout).toContain(secret);
    secrets.set('judy', secret);

    const again = await enroll();
    expect(again.status).toBe(1);
    expect(again.stdout + again.stderr).toContain('--replace');

    const judy = await new Session(app, 'judy').login();
    const challenge = challengeOf(await judy.send('POST', '/transfer', { to: 'bob', amount: 1 }));
    expect((await judy.verify(challenge, judy.code())).status).toBe(200);
    expect((await judy.send('POST', '/transfer', { to: 'bob', amount: 1 })).status).toBe(200);
  });
});

describe('telemetry of the step-up lifecycle', () => {
  it('records challenge, verification, failures and lockouts — and never a secret, code, challenge or grant', async () => {
    const expected = ['challenge_issued', 'verified', 'failed', 'locked_out', 'grant_used', 'enrollment_required', 'grant_rejected', 'refused'];
    const spans = await receiver.waitFor((s) => expected.every((e) => s.some((x) => x.attributes['stepguard.step_up.event'] === e)));
    const verified = spans.find((s) => s.attributes['stepguard.step_up.event'] === 'verified')!;
    expect(verified.name).toBe('stepguard.step_up');
    expect(verified.attributes['user.id']).toBeTruthy();
    const wire = receiver.rawBodies.join('\n');
    for (const secret of secrets.values()) expect(wire).not.toContain(secret);
    for (const code of usedCodes) expect(wire).not.toContain(`"${code}"`);
    for (const grant of grants) {
      expect(wire).not.toContain(grant);
      expect(wire).not.toContain(grant.split('.')[1]);
    }
    expect(wire).not.toContain('challenge_id');
  });
});

describe('the per-client-address limit', () => {
  it('locks out a client address that fails across several users, even for a user with no failures of their own', async () => {
    const other = await startApp(BANK, {
      env: {
        BANK_DB_URL: PG_URL,
        PORT: '0',
        STEPGUARD_MODE: 'block',
        STEPGUARD_RULES: join(REPO, 'examples/bank/rules.yaml'),
        STEPGUARD_STORE_DIR: mkdtempSync(join(tmpdir(), 'sg-store-client-')),
        STEPGUARD_SECRET: 'client-limit-secret-with-at-least-32-chars',
        STEPGUARD_MAX_ATTEMPTS_PER_USER: '10',
        STEPGUARD_MAX_ATTEMPTS_PER_CLIENT: '3',
      },
    });
    try {
      const users = await Promise.all(['alice', 'bob', 'carol'].map(async (u) => {
        const s = await new Session(other, u).login();
        await s.enroll();
        return s;
      }));
      for (const s of users.slice(0, 2)) {
        const c = challengeOf(await s.send('POST', '/transfer', { to: 'dave', amount: 1 }));
        expect((await s.verify(c, '000000')).status).toBe(401);
      }
      const carol = users[2]!;
      const c = challengeOf(await carol.send('POST', '/transfer', { to: 'dave', amount: 1 }));
      const third = await carol.verify(c, '000000');
      expect(third.status).toBe(429);
      const correct = await carol.verify(c, carol.code());
      expect(correct.status).toBe(429);
      expect(Number(correct.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await other.stop();
    }
  });
});
