/** The bank example as a test client sees it: browsers with cookie jars, codes from an authenticator. */
import { expect } from 'vitest';
import pg from 'pg';
import { generateSync } from 'otplib';
import { call, logged, type Reply, type RunningApp } from './app.js';
import { PG_URL } from './services.js';

export const VERIFY = '/.well-known/stepguard/step-up';
/** Everything sensitive the tests handled, so telemetry can be checked for leaks. */
export const secrets = new Map<string, string>();
export const usedCodes: string[] = [];
export const grants: string[] = [];

/** A browser: one cookie jar per user. */
export class Session {
  cookies = new Map<string, string>();
  constructor(
    public app: RunningApp,
    readonly user: string,
  ) {}

  /** The same browser talking to another instance of the app (shared session cookie). */
  on(app: RunningApp): Session {
    const twin = new Session(app, this.user);
    twin.cookies = this.cookies;
    return twin;
  }
  async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const reply = await call(this.app, method, path, { ...(body === undefined ? {} : { body }), headers: { ...(cookie ? { cookie } : {}), ...headers } });
    for (const set of reply.headers.getSetCookie()) {
      const [pair] = set.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return reply;
  }
  async login(): Promise<this> {
    const reply = await this.send('POST', '/login', { username: this.user, password: `${this.user}-password` });
    expect(reply.status).toBe(200);
    return this;
  }
  /** Enrolls through the app's own UI route (stepguard's programmatic API) and keeps the secret, like a phone would. */
  async enroll(): Promise<string> {
    const reply = await this.send('POST', '/mfa/enroll');
    expect(reply.status).toBe(200);
    const uri = new URL((reply.json() as { otpauth_uri: string }).otpauth_uri);
    const secret = uri.searchParams.get('secret')!;
    secrets.set(this.user, secret);
    return secret;
  }
  /** Re-enrollment (needs a grant for scope stepguard.enroll in this session); keeps the new secret. */
  async enrollReplacing(): Promise<string> {
    const reply = await this.send('POST', '/mfa/enroll?replace=1');
    expect(reply.status).toBe(200);
    const secret = new URL((reply.json() as { otpauth_uri: string }).otpauth_uri).searchParams.get('secret')!;
    secrets.set(this.user, secret);
    return secret;
  }

  /** The code the authenticator app shows now (or one step ahead, still inside the accepted drift). */
  code(stepOffset = 0): string {
    const code = generateSync({ secret: secrets.get(this.user)!, epoch: Math.floor(Date.now() / 1000) + stepOffset * 30 });
    usedCodes.push(code);
    return code;
  }
  async verify(challengeId: string, code: string): Promise<Reply> {
    const reply = await this.send('POST', VERIFY, { challenge_id: challengeId, code });
    if (reply.status === 200) grants.push((reply.json() as { grant: string }).grant);
    return reply;
  }
}

export async function balanceOf(user: string): Promise<number> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<{ balance: number }>('SELECT balance FROM accounts WHERE id = $1', [user])).rows[0]!.balance;
  } finally {
    await client.end();
  }
}

export async function resetBank(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query('DROP TABLE IF EXISTS accounts').finally(() => client.end());
}

/** The challenge of a step-up answer; fails here, naming the answer, when the reply is not one. */
export function challengeOf(reply: Reply): string {
  const id = reply.status === 401 ? (reply.json() as { challenge_id?: unknown }).challenge_id : undefined;
  if (typeof id !== 'string') throw new Error(`expected a step-up challenge (401 with challenge_id), got ${reply.status}: ${reply.text.slice(0, 300)}`);
  return id;
}

/** Six-digit codes that are not valid now (nor within two steps before or after). */
export function wrongCodes(user: string, n: number): string[] {
  const secret = secrets.get(user)!;
  const now = Math.floor(Date.now() / 1000);
  const valid = new Set([-2, -1, 0, 1, 2].map((k) => generateSync({ secret, epoch: now + k * 30 })));
  const out: string[] = [];
  for (let i = 100_000; out.length < n; i += 7919) if (!valid.has(String(i))) out.push(String(i));
  return out;
}

/**
 * Codes the endpoint actually checked for `user`: its own log lines (one per checked code), over every instance.
 * Call `logFlushed` on each instance first: the lines of a burst's checked codes are the last it writes.
 */
export function codesChecked(apps: RunningApp[], user: string): number {
  let n = 0;
  for (const app of apps) {
    for (const line of app.stderr().split('\n')) {
      if (!line.includes(` user=${user} `) && !line.endsWith(` user=${user}`)) continue;
      if (/step-up verified/.test(line) || /step-up failed .*reason=(invalid|replayed)/.test(line)) n++;
    }
  }
  return n;
}

/**
 * Waits until everything `app` logged before now has reached this process. A reply can be read before the log line
 * the app wrote ahead of it (the stderr pipe and the socket arrive separately), but one process's stderr keeps its
 * order: the line of a request sent now arrives after every line logged before it.
 */
export async function logFlushed(app: RunningApp): Promise<void> {
  const marker = /step-up failed reason=challenge-/g;
  const before = app.stderr().match(marker)?.length ?? 0;
  expect((await new Session(app, 'nobody').verify('not-a-challenge', '000000')).status).toBe(401);
  await logged(app, function barrierLine(stderr) {
    return (stderr.match(marker)?.length ?? 0) > before;
  });
}

/** The replies of a burst and the apps' lines about `user`, tallied: the message of a failed count. */
export function burstReport(replies: Reply[], apps: RunningApp[], user: string): string {
  const tally = (keys: string[]) => {
    const counts = new Map<string, number>();
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
    return [...counts].map(([key, n]) => `${n} × ${key}`).join('\n  ');
  };
  const problem = (r: Reply) => `${r.status} ${(/"type":"([^"]*)"/.exec(r.text) ?? [])[1] ?? ''}`.trim();
  const lines = apps.flatMap((app, i) => app.stderr().split('\n').filter((l) => l.includes(`user=${user}`) || l.includes('store')).map((l) => `app ${i + 1}: ${l}`));
  return `replies:\n  ${tally(replies.map(problem))}\nlog lines:\n  ${tally(lines)}`;
}
