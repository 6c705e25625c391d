/**
 * End-to-end SSRF: an app that fetches user-chosen URLs (global fetch, http.get with and without following
 * redirects, http.request with an options object) and proxies the answer.
 *
 * - The INTERNAL service is a loopback HTTP server holding a secret. Every attack is shown to read the secret
 *   from the app without the agent, and to be refused with it (403 problem+json, and the internal service never
 *   saw that request).
 * - The PUBLIC host is a web server in a network namespace on a TEST-NET-3 address (test/helpers/netns.ts):
 *   benign cases really go out, to a non-private address, and must answer exactly as without the agent.
 * - DNS: both apps run with a private /etc/resolv.conf pointing at a DNS server the test controls
 *   (test/helpers/dns-server.ts): `internal.sg.test` → 127.0.0.1, `public.sg.test` → the public host, and
 *   `rebind-*.sg.test` answering the public host first and 127.0.0.1 afterwards (DNS rebinding).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { call, fixture, startApp, type RunningApp } from '../helpers/app.js';
import { startNetnsHost, type NetnsHost } from '../helpers/netns.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { readCorpus } from '../helpers/corpus.js';

interface Case {
  route: string;
  param: string;
  value: string;
  extra?: Record<string, string>;
  note?: string;
}


const attacks = readCorpus<Case>('ssrf.attack.jsonl');
const benign = readCorpus<Case>('ssrf.benign.jsonl');
const SECRET = `SECRET-${randomBytes(6).toString('hex')}`;

let internal: Server;
const hits = new Map<string, number>();
let publicHost: NetnsHost;
let dns: DnsServer;
let bare: RunningApp;
let guarded: RunningApp;

const caseId = (who: 'b' | 'g', i: number) => `${who}${i}`;

function fill(text: string, app: RunningApp, id: string): string {
  return text
    .replace(/\{PORT\}/g, String((internal.address() as AddressInfo).port))
    .replace(/\{PUB\}/g, publicHost.address)
    .replace(/\{APP\}/g, String(app.port))
    .replace(/\{CASE\}/g, id);
}

function send(app: RunningApp, c: Case, id: string) {
  const params = new URLSearchParams({ [c.param]: fill(c.value, app, id) });
  for (const [k, v] of Object.entries(c.extra ?? {})) params.set(k, fill(v, app, id));
  return call(app, 'GET', `${c.route}?${params.toString()}`);
}

beforeAll(async () => {
  internal = createServer((req, res) => {
    const c = new URL(req.url ?? '/', 'http://x').searchParams.get('c') ?? '';
    hits.set(c, (hits.get(c) ?? 0) + 1);
    res.end(`${SECRET} (internal only)`);
  });
  // '::' answers 127.0.0.1, ::1, ::ffff:127.0.0.1 and 0.0.0.0 alike.
  await new Promise<void>((resolve) => internal.listen(0, '::', resolve));
  publicHost = await startNetnsHost({ script: fixture('ssrf-public-host.cjs') });

  const records: Record<string, string | ((n: number) => string)> = {
    'internal.sg.test': '127.0.0.1',
    'public.sg.test': publicHost.address,
    localhost: '127.0.0.1',
  };
  attacks.forEach((c, i) => {
    if (!c.value.includes('rebind-')) return;
    for (const who of ['b', 'g'] as const) records[`rebind-${caseId(who, i)}.sg.test`] = (n) => (n === 1 ? publicHost.address : '127.0.0.1');
  });
  dns = await startDnsServer(records);

  const env = {
    STEPGUARD_RULES: '',
    SG_PUBLIC_URL: `http://${publicHost.address}`,
    SG_INTERNAL_URL: `http://127.0.0.1:${(internal.address() as AddressInfo).port}/secret`,
  };
  [bare, guarded] = await Promise.all([
    startApp(fixture('ssrf-app.cjs'), { agent: false, env, nodeBinary: dns.nodeBinary }),
    startApp(fixture('ssrf-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' }, nodeBinary: dns.nodeBinary }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  await Promise.all([publicHost?.stop(), dns?.stop(), new Promise((r) => (internal ? internal.close(r) : r(undefined)))]);
});

describe('ssrf corpus', () => {
  it('has at least 25 attacks (with DNS rebinding and redirects) and 30 benign cases', () => {
    expect(attacks.length).toBeGreaterThanOrEqual(25);
    expect(benign.length).toBeGreaterThanOrEqual(30);
    expect(attacks.some((c) => c.value.includes('rebind-'))).toBe(true);
    expect(attacks.filter((c) => c.value.includes('/redirect?')).length).toBeGreaterThanOrEqual(4);
  });
});

describe('ssrf attacks reach the internal service without the agent and are refused with it', () => {
  it.each(attacks.map((c, i) => [i, c.note ?? c.value, c] as const))('#%i %s', async (i, _note, c) => {
    const without = await send(bare, c, caseId('b', i));
    expect(without.text).toContain(SECRET);
    expect(hits.get(caseId('b', i)) ?? 0).toBeGreaterThan(0);

    const before = guarded.stderr().length;
    const withAgent = await send(guarded, c, caseId('g', i));
    expect(withAgent.status, withAgent.text).toBe(403);
    expect(withAgent.headers.get('content-type')).toContain('application/problem+json');
    expect(withAgent.text).not.toContain(SECRET);
    expect(hits.get(caseId('g', i)) ?? 0).toBe(0);
    await expect.poll(() => guarded.stderr().slice(before), { timeout: 5000 }).toMatch(/attack ssrf blocked rule=ssrf/);
  });
});

describe('benign outgoing requests pass unchanged', () => {
  it.each(benign.map((c, i) => [i, c.value, c] as const))('#%i %s', async (i, _v, c) => {
    const without = await send(bare, c, caseId('b', 100 + i));
    const before = guarded.stderr().length;
    const withAgent = await send(guarded, c, caseId('g', 100 + i));
    expect(without.status).toBe(200);
    expect(withAgent.status).toBe(without.status);
    expect(withAgent.text.replace(String(guarded.port), 'APP')).toBe(without.text.replace(String(bare.port), 'APP'));
    expect(guarded.stderr().slice(before)).not.toMatch(/attack ssrf/);
  });
});
