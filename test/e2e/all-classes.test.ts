/**
 * One app, every class of issue #12 part B at once (open redirect, reflected XSS, node-serialize and js-yaml
 * deserialization, a calculator on `new Function`): each attack is shown to work without the agent and to get
 * the standard 403 with it, in the same process; benign requests answer the same either way. (XXE has its own
 * app and test, test/e2e/xxe.test.ts, because libxmljs2 is a native build installed into test/xxe.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startBareAndGuarded, type RunningApp } from '../helpers/app.js';

const DIR = mkdtempSync(join(tmpdir(), 'sg-all-'));
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  ({ bare, guarded } = await startBareAndGuarded(fixture('all-classes-app.cjs')));
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  rmSync(DIR, { recursive: true, force: true });
});

const cookieOf = (doc: object) => `profile=${Buffer.from(JSON.stringify(doc)).toString('base64')}`;

interface Request {
  path: string;
  init?: RequestInit;
}

const requests = {
  redirect: (): Request => ({ path: `/login?next=${encodeURIComponent('//evil.example/phish')}` }),
  xss: (): Request => ({ path: `/search?q=${encodeURIComponent('<img src=x onerror=alert(1)>')}` }),
  nodeSerialize: (mark: string): Request => ({
    path: '/me',
    init: { headers: { cookie: cookieOf({ username: `_$$ND_FUNC$$_function(){require('fs').writeFileSync(${JSON.stringify(mark)},'x')}()` }) } },
  }),
  yaml: (mark: string): Request => ({
    path: '/import',
    init: {
      method: 'POST',
      headers: { 'content-type': 'text/yaml' },
      body: `name: { toString: !!js/function "function(){ process.mainModule.require('fs').writeFileSync(${JSON.stringify(mark).replace(/"/g, "'")},'x'); return 'n' }" }`,
    },
  }),
  code: (): Request => ({ path: `/calc?expr=${encodeURIComponent("process.mainModule.require('os').hostname()")}` }),
};

async function send(app: RunningApp, r: Request) {
  const res = await fetch(app.url + r.path, { redirect: 'manual', ...r.init });
  return { status: res.status, location: res.headers.get('location'), contentType: res.headers.get('content-type'), body: await res.text() };
}

function expectRefused(answer: Awaited<ReturnType<typeof send>>): void {
  expect(answer.status).toBe(403);
  expect(answer.contentType).toBe('application/problem+json');
  expect(Object.keys(JSON.parse(answer.body) as object).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
}

describe('every class in one app', () => {
  it('open redirect: Location to evil.example without the agent, 403 with it', async () => {
    const plain = await send(bare, requests.redirect());
    expect(new URL(plain.location!, bare.url).hostname).toBe('evil.example');
    expectRefused(await send(guarded, requests.redirect()));
  });

  it('reflected XSS: the handler is in the page without the agent, 403 with it', async () => {
    expect((await send(bare, requests.xss())).body).toContain('<img src=x onerror=alert(1)>');
    expectRefused(await send(guarded, requests.xss()));
  });

  it('node-serialize: code runs without the agent, 403 and no code with it', async () => {
    await send(bare, requests.nodeSerialize(join(DIR, 'ns-bare')));
    expect(existsSync(join(DIR, 'ns-bare'))).toBe(true);
    expectRefused(await send(guarded, requests.nodeSerialize(join(DIR, 'ns-guarded'))));
    expect(existsSync(join(DIR, 'ns-guarded'))).toBe(false);
  });

  it('js-yaml 3: code runs without the agent, 403 and no code with it', async () => {
    await send(bare, requests.yaml(join(DIR, 'y-bare')));
    expect(existsSync(join(DIR, 'y-bare'))).toBe(true);
    expectRefused(await send(guarded, requests.yaml(join(DIR, 'y-guarded'))));
    expect(existsSync(join(DIR, 'y-guarded'))).toBe(false);
  });

  it('calculator: code runs without the agent, 403 with it; pure arithmetic and logic still compute', async () => {
    const plain = await send(bare, requests.code());
    expect(plain.status).toBe(200);
    expect(plain.body.length).toBeGreaterThan(0);
    expectRefused(await send(guarded, requests.code()));
    const expr = encodeURIComponent('(7 & 3) << 2 > 10 ? 1 + 2 : 0');
    const [a, b] = await Promise.all([send(bare, { path: `/calc?expr=${expr}` }), send(guarded, { path: `/calc?expr=${expr}` })]);
    expect(a).toEqual({ status: 200, location: null, contentType: 'text/plain; charset=utf-8', body: '3' });
    expect(b).toEqual(a);
  });

  it('benign requests answer the same with and without the agent', async () => {
    const benign: Request[] = [
      { path: '/login?next=%2Faccount' },
      { path: `/search?q=${encodeURIComponent('Tom & Jerry < 3')}` },
      { path: '/me', init: { headers: { cookie: cookieOf({ username: 'alice' }) } } },
      { path: '/import', init: { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: 'name: bob\n' } },
    ];
    for (const r of benign) {
      const [plain, withAgent] = await Promise.all([send(bare, r), send(guarded, r)]);
      expect(withAgent, r.path).toEqual(plain);
      expect(plain.status).toBeLessThan(400);
    }
  });
});
