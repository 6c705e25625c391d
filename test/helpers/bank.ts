/** The bank example as a test client sees it: browsers with cookie jars, codes from an authenticator. */
import { expect } from 'vitest';
import pg from 'pg';
import { generateSync } from 'otplib';
import { call, type Reply, type RunningApp } from './app.js';
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
