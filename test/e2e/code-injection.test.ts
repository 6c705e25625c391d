/**
 * End-to-end: a vulnerable Express app that compiles JavaScript built from request input through every
 * covered sink (new Function, Function, AsyncFunction, GeneratorFunction, a prototype's constructor, and
 * vm.Script / runInThisContext / runInContext / runInNewContext / compileFunction). Every exploit is first
 * shown to run code without the agent — it writes a marker file, or returns a secret from the server's
 * environment — then refused in block mode: an opaque 403 problem+json, no file, no secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { call, fixture, logged, startApp, type Reply, type RunningApp } from '../helpers/app.js';
import { readCorpus } from '../helpers/corpus.js';

interface AttackCase {
  route: string;
  payload: string;
  effect: 'marker' | 'secret';
}
interface BenignCase {
  route: string;
  payload: string;
}


const attacks = readCorpus<AttackCase>('code-injection.attack.jsonl');
const benign = readCorpus<BenignCase>('code-injection.benign.jsonl');
const runId = randomBytes(4).toString('hex');
const SECRET = `sg-secret-${runId}`;
const marker = (i: number, who: string) => `/tmp/sg-code-marker-${runId}-${who}-${i}`;

const env = { SG_SECRET: SECRET, STEPGUARD_RULES: '' };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  [bare, guarded] = await Promise.all([
    startApp(fixture('code-app.cjs'), { agent: false, env }),
    startApp(fixture('code-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  attacks.forEach((_, i) => ['bare', 'guarded'].forEach((w) => rmSync(marker(i, w), { force: true })));
});

/** Alternates delivery: query string, JSON body, nested JSON body. */
function send(app: RunningApp, route: string, payload: string, i: number): Promise<Reply> {
  const path = `/code/${route}`;
  if (i % 3 === 1) return call(app, 'POST', path, { body: { q: payload } });
  if (i % 3 === 2) return call(app, 'POST', path, { body: { input: { q: payload } } });
  return call(app, 'GET', `${path}?q=${encodeURIComponent(payload)}`);
}

async function waitForFile(path: string): Promise<boolean> {
  for (let i = 0; i < 40 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 25));
  return existsSync(path);
}

describe('code injection corpus', () => {
  it('has at least 10 attacks through every sink and 30 benign inputs', () => {
    expect(attacks.length).toBeGreaterThanOrEqual(10);
    expect(benign.length).toBeGreaterThanOrEqual(30);
    const routes = new Set(attacks.map((a) => a.route));
    for (const r of ['calc', 'calc-call', 'greet', 'script', 'this-context', 'in-context', 'compile', 'async', 'generator', 'ctor']) expect(routes).toContain(r);
  });

  it.each(attacks.map((a, i) => [`${a.route}: ${a.payload}`, a, i] as const))('%s', async (_n, a, i) => {
    const payloadFor = (who: string) => a.payload.split('{{MARKER}}').join(marker(i, who));

    const withoutAgent = await send(bare, a.route, payloadFor('bare'), i);
    if (a.effect === 'marker') expect(await waitForFile(marker(i, 'bare')), `exploit should work without the agent: ${withoutAgent.text}`).toBe(true);
    else expect(withoutAgent.text, 'exploit should leak the secret without the agent').toContain(SECRET);

    const withAgent = await send(guarded, a.route, payloadFor('guarded'), i);
    expect(withAgent.status).toBe(403);
    expect(withAgent.headers.get('content-type')).toBe('application/problem+json');
    expect(Object.keys(withAgent.json() as object).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
    expect(withAgent.text).not.toMatch(/inject|function|script|stack|process|stepguard\./i);
    expect(withAgent.text).not.toContain(SECRET);
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(marker(i, 'guarded'))).toBe(false);
  });
});

describe('benign code input in block mode', () => {
  it.each(benign.map((b, i) => [`${b.route}: ${JSON.stringify(b.payload)}`, b, i] as const))('%s passes unchanged', async (_n, b, i) => {
    const [plain, protectedReply] = await Promise.all([send(bare, b.route, b.payload, i), send(guarded, b.route, b.payload, i)]);
    expect(protectedReply.status).toBe(plain.status);
    expect(protectedReply.text).toBe(plain.text);
  });

  it('reported no attack for any benign input', async () => {
    // Concatenated but harmless input is still reported, as a vulnerability (monitor only).
    await logged(guarded, /vulnerability code-injection reported .*op=Function /);
    const lines = guarded.stderr().split('\n').filter((l) => l.includes('attack code-injection'));
    expect(lines.length).toBe(attacks.length);
  });
});
