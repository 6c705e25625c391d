/**
 * The client address behind a real reverse proxy (issue #11 scope 4). The bank app trusts one proxy, 127.0.0.2 —
 * a loopback HTTP proxy this test runs, which connects to the app from 127.0.0.2 and appends the address it saw to
 * X-Forwarded-For. Clients connect from their own loopback addresses (127.0.0.3, …), either directly (an untrusted
 * peer: any X-Forwarded-For it sends is ignored) or through the proxy (their real address is used). The per-address
 * verification lockout (3 failures) shows which address the agent used; the findings log shows `client.address`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSync } from 'otplib';
import { REPO, startApp, type RunningApp } from '../helpers/app.js';
import { VERIFY, resetBank } from '../helpers/bank.js';
import { PG_URL, requirePostgres } from '../helpers/services.js';

const BANK = join(REPO, 'examples/bank/app.cjs');
const PROXY_ADDRESS = '127.0.0.2';
let app: RunningApp;
let proxy: http.Server;
let proxyPort: number;
let findings: string;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP exchange from `localAddress` to 127.0.0.1:`port`. */
function send(port: number, localAddress: string, method: string, path: string, body: unknown, headers: Record<string, string>): Promise<Reply> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress, method, path, agent: false, headers: { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** A browser at `address`, talking to the app directly or through the proxy. */
class Browser {
  cookies = new Map<string, string>();
  secret = '';
  constructor(
    readonly user: string,
    readonly address: string,
    readonly viaProxy: boolean,
    readonly spoof?: string,
  ) {}
  async send(method: string, path: string, body?: unknown): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (this.spoof) headers['x-forwarded-for'] = this.spoof;
    const reply = await send(this.viaProxy ? proxyPort : app.port, this.address, method, path, body, headers);
    const set = reply.headers['set-cookie'] ?? [];
    for (const c of set) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return reply;
  }
  async enrolled(): Promise<this> {
    expect((await this.send('POST', '/login', { username: this.user, password: `${this.user}-password` })).status).toBe(200);
    const reply = await this.send('POST', '/mfa/enroll');
    expect(reply.status).toBe(200);
    this.secret = new URL((JSON.parse(reply.body) as { otpauth_uri: string }).otpauth_uri).searchParams.get('secret')!;
    return this;
  }
  /** The same session (cookies, secret) from another address or path. */
  as(address: string, viaProxy: boolean, spoof?: string): Browser {
    const b = new Browser(this.user, address, viaProxy, spoof);
    b.cookies = this.cookies;
    b.secret = this.secret;
    return b;
  }
  async challenge(): Promise<string> {
    const reply = await this.send('POST', '/transfer', { to: 'bob', amount: 1 });
    expect(reply.status).toBe(401);
    return (JSON.parse(reply.body) as { challenge_id: string }).challenge_id;
  }
  code(): string {
    return generateSync({ secret: this.secret, epoch: Math.floor(Date.now() / 1000) });
  }
  wrong(): string {
    const now = Math.floor(Date.now() / 1000);
    const valid = new Set([-1, 0, 1].map((k) => generateSync({ secret: this.secret, epoch: now + k * 30 })));
    let n = 123_456;
    while (valid.has(String(n))) n++;
    return String(n);
  }
  verify(challenge: string, code: string): Promise<Reply> {
    return this.send('POST', VERIFY, { challenge_id: challenge, code });
  }
}

beforeAll(async () => {
  await requirePostgres();
  await resetBank();
  findings = join(mkdtempSync(join(tmpdir(), 'sg-proxy-log-')), 'findings.jsonl');
  app = await startApp(BANK, {
    env: {
      BANK_DB_URL: PG_URL,
      PORT: '0',
      BANK_SESSION_SECRET: 'proxy-test-session-secret',
      STEPGUARD_MODE: 'block',
      STEPGUARD_RULES: join(REPO, 'examples/bank/rules.yaml'),
      STEPGUARD_SECRET: 'proxy-test-secret-with-at-least-32-characters',
      STEPGUARD_STORE_DIR: mkdtempSync(join(tmpdir(), 'sg-proxy-store-')),
      STEPGUARD_MAX_ATTEMPTS_PER_USER: '10',
      STEPGUARD_MAX_ATTEMPTS_PER_CLIENT: '3',
      STEPGUARD_LOCKOUT_SECONDS: '300',
      STEPGUARD_TRUSTED_PROXIES: PROXY_ADDRESS,
      STEPGUARD_FINDINGS_FILE: findings,
    },
  });
  // The reverse proxy: forwards every request to the app from 127.0.0.2, appending the client's address.
  proxy = http.createServer((req, res) => {
    const prior = req.headers['x-forwarded-for'];
    const headers = { ...req.headers, 'x-forwarded-for': `${prior ? `${String(prior)}, ` : ''}${req.socket.remoteAddress}` };
    const upstream = http.request({ host: '127.0.0.1', port: app.port, localAddress: PROXY_ADDRESS, method: req.method, path: req.url, headers, agent: false }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyPort = (proxy.address() as { port: number }).port;
}, 30_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  await app?.stop();
});

describe('client address and the per-address lockout', () => {
  it('an untrusted peer spoofing X-Forwarded-For is judged by its socket address', async () => {
    // Each failure claims another address; they all count against 127.0.0.3.
    const alice = await new Browser('alice', '127.0.0.3', false).enrolled();
    const challenge = await alice.challenge();
    for (let i = 0; i < 3; i++) await alice.as('127.0.0.3', false, `198.51.100.${i + 1}`).verify(challenge, alice.wrong());
    const bob = await new Browser('bob', '127.0.0.3', false, '198.51.100.200').enrolled();
    const bobChallenge = await bob.challenge();
    expect((await bob.verify(bobChallenge, bob.code())).status).toBe(429);
    // bob through the proxy from his own address: not locked.
    expect((await bob.as('127.0.0.4', true).verify(bobChallenge, bob.code())).status).toBe(200);
  });

  it('through the trusted proxy, the real client address is used — and a spoofed header in front of it is not', async () => {
    const carol = await new Browser('carol', '127.0.0.5', true).enrolled();
    const challenge = await carol.challenge();
    for (let i = 0; i < 3; i++) await carol.verify(challenge, carol.wrong());
    // 127.0.0.5 is locked, even when it claims to be someone else in front of the proxy…
    const dave = await new Browser('dave', '127.0.0.5', true, '203.0.113.9').enrolled();
    const daveChallenge = await dave.challenge();
    expect((await dave.verify(daveChallenge, dave.code())).status).toBe(429);
    // …while another client behind the same proxy is not (the proxy's own address is not one shared bucket).
    expect((await dave.as('127.0.0.6', true).verify(daveChallenge, dave.code())).status).toBe(200);

    // Spans (here: the findings log, the same attributes) record the real client address.
    let records: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (!existsSync(findings)) continue;
      records = readFileSync(findings, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      if (records.some((r) => r['user.id'] === 'dave' && r['stepguard.step_up.event'] === 'verified')) break;
    }
    const carolFailures = records.filter((r) => r['user.id'] === 'carol' && r['stepguard.step_up.event'] === 'failed');
    expect(carolFailures.length).toBeGreaterThan(0);
    expect(new Set(carolFailures.map((r) => r['client.address']))).toEqual(new Set(['127.0.0.5']));
    const daveVerified = records.find((r) => r['user.id'] === 'dave' && r['stepguard.step_up.event'] === 'verified');
    expect(daveVerified?.['client.address']).toBe('127.0.0.6');
    expect(records.some((r) => r['client.address'] === '203.0.113.9' || r['client.address'] === PROXY_ADDRESS)).toBe(false);
  });
});
