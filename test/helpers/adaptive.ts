/**
 * Browsers for the adaptive step-up tests: a cookie jar and a chosen loopback source address (127.0.0.x), so
 * address-based signals see distinct clients over real TCP.
 */
import http from 'node:http';
import { expect } from 'vitest';
import { generateSync } from 'otplib';
import type { RunningApp } from './app.js';

export const VERIFY = '/.well-known/stepguard/step-up';
const secrets = new Map<string, string>();

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): Record<string, unknown>;
}

export class Browser {
  cookies = new Map<string, string>();
  constructor(
    public app: RunningApp,
    readonly user: string,
    readonly from = '127.0.0.1',
  ) {}

  /** The same browser (cookies shared) on another instance or from another address. */
  on(app: RunningApp, from = this.from): Browser {
    const twin = new Browser(app, this.user, from);
    twin.cookies = this.cookies;
    return twin;
  }

  send(method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.app.port,
          method,
          path,
          localAddress: this.from,
          agent: false,
          headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}), ...(cookie ? { cookie } : {}) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            for (const set of res.headers['set-cookie'] ?? []) {
              const [pair] = set.split(';');
              const eq = pair!.indexOf('=');
              this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Signs in (a new session cookie: grants of the old session no longer apply) and makes one request as the user. */
  async login(): Promise<this> {
    expect((await this.send('POST', '/login', { username: this.user, password: `${this.user}-password` })).status).toBe(200);
    // Authentication runs as middleware: the first request of a session teaches the agent the session's user.
    expect((await this.send('GET', '/balance')).status).toBe(200);
    return this;
  }

  async enroll(): Promise<void> {
    const reply = await this.send('POST', '/mfa/enroll');
    if (reply.status === 409 && secrets.has(this.user)) return; // enrolled earlier in this test file
    expect(reply.status).toBe(200);
    secrets.set(this.user, new URL(String(reply.json().otpauth_uri)).searchParams.get('secret')!);
  }

  code(): string {
    return generateSync({ secret: secrets.get(this.user)!, epoch: Math.floor(Date.now() / 1000) });
  }

  transfer(amount = 1): Promise<Answer> {
    return this.send('POST', '/transfer', { to: this.user === 'judy' ? 'ivan' : 'judy', amount });
  }

  /** Answers a challenge with a fresh code (waits for the next time step if this one was used). */
  async verify(reply: Answer): Promise<Answer> {
    const challenge = String(reply.json().challenge_id);
    let answer = await this.send('POST', VERIFY, { challenge_id: challenge, code: this.code() });
    if (answer.status === 401 && answer.text.includes('already used')) {
      await sleep(30_000 - (Date.now() % 30_000) + 200);
      answer = await this.send('POST', VERIFY, { challenge_id: challenge, code: this.code() });
    }
    return answer;
  }
}

/** Signs in, enrolls, and verifies once on a new-device challenge: the browser holds a trusted device cookie. */
export async function trustedBrowser(app: RunningApp, user: string, from = '127.0.0.1'): Promise<Browser> {
  const b = await new Browser(app, user, from).login();
  await b.enroll();
  const challenged = await b.transfer();
  expect(challenged.status).toBe(401);
  expect(challenged.json().rule ?? challenged.text).toBeDefined();
  const verified = await b.verify(challenged);
  expect(verified.status).toBe(200);
  expect(b.cookies.has('sg_device')).toBe(true);
  await b.login(); // a fresh session: only the device cookie carries over
  return b;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function ruleOf(reply: Answer): string | undefined {
  const m = /acr_values="([^"]*)"/.exec(String(reply.headers['www-authenticate'] ?? ''));
  return m?.[1];
}
