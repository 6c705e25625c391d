/**
 * End-to-end: a vulnerable Express app that runs shell commands built from user input. Every exploit
 * creates a marker file without the agent; in block mode the request gets an opaque 403 and the file
 * system proves the shell never ran it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { call, fixture, startApp, type Reply, type RunningApp } from '../helpers/app.js';
import { MYSQL_URL, PG_URL } from '../helpers/services.js';
import { readCorpus } from '../helpers/corpus.js';

interface ShellCase {
  context: string;
  payload: string;
  quoting?: string;
}


const attacks = readCorpus<ShellCase>('command-injection.attack.jsonl');
const benign = readCorpus<ShellCase>('command-injection.benign.jsonl');
const runId = randomBytes(4).toString('hex');
const marker = (i: number, who: string) => `/tmp/sg-marker-${runId}-${who}-${i}`;

const env = { SG_PG_URL: PG_URL, SG_MYSQL_URL: MYSQL_URL, STEPGUARD_RULES: '' };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  mkdirSync('/tmp/sg-files', { recursive: true });
  writeFileSync('/tmp/sg-files/report.pdf', 'pdf');
  [bare, guarded] = await Promise.all([
    startApp(fixture('express-app.cjs'), { agent: false, env }),
    startApp(fixture('express-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  attacks.forEach((_, i) => ['bare', 'guarded'].forEach((w) => rmSync(marker(i, w), { force: true })));
});

/** Alternates delivery (query string / JSON body) and API (promisified exec / callback exec). */
function send(app: RunningApp, context: string, payload: string, i: number): Promise<Reply> {
  if (i % 3 === 1) return call(app, 'POST', `/shell/${context}`, { body: { q: payload } });
  if (i % 3 === 2) return call(app, 'GET', `/shell-cb/${context}?q=${encodeURIComponent(payload)}`);
  return call(app, 'GET', `/shell/${context}?q=${encodeURIComponent(payload)}`);
}

describe('shell injection corpus', () => {
  it('has at least 25 attacks and 50 benign inputs', () => {
    expect(attacks.length).toBeGreaterThanOrEqual(25);
    expect(benign.length).toBeGreaterThanOrEqual(50);
    const all = attacks.map((a) => a.payload).join('\n');
    for (const op of [';', '|', '&&', '$(', '`', '\n', '>']) expect(all).toContain(op);
  });

  it.each(attacks.map((a, i) => [`${a.context}: ${JSON.stringify(a.payload)}`, a, i] as const))('%s', async (_n, a, i) => {
    const withoutAgent = await send(bare, a.context, a.payload.split('{{MARKER}}').join(marker(i, 'bare')), i);
    await waitForFile(marker(i, 'bare'));
    expect(existsSync(marker(i, 'bare')), `exploit should work without the agent: ${withoutAgent.text}`).toBe(true);

    const withAgent = await send(guarded, a.context, a.payload.split('{{MARKER}}').join(marker(i, 'guarded')), i);
    expect(withAgent.status).toBe(403);
    expect(withAgent.headers.get('content-type')).toBe('application/problem+json');
    expect(Object.keys(withAgent.json() as object).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
    expect(withAgent.text).not.toMatch(/shell|inject|command|stack|touch/i);
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(marker(i, 'guarded'))).toBe(false);
  });
});

describe('benign shell input in block mode', () => {
  it.each(benign.map((b) => [JSON.stringify(b.payload), b] as const))('%s passes unchanged', async (_n, b) => {
    const quoted = `/shell-quoted?q=${encodeURIComponent(b.payload)}`;
    const [plain, guardedReply] = await Promise.all([call(bare, 'GET', quoted), call(guarded, 'GET', quoted)]);
    expect(guardedReply.status).toBe(200);
    expect(guardedReply.text).toBe(plain.text);
    if (b.quoting !== 'escaped') {
      const raw = `/shell/${b.context}?q=${encodeURIComponent(b.payload)}`;
      const [p1, p2] = await Promise.all([call(bare, 'GET', raw), call(guarded, 'GET', raw)]);
      expect(p2.status).toBe(p1.status);
      expect(p2.text).toBe(p1.text);
    }
  });

  it('reported no attack for any benign input', () => {
    const lines = guarded.stderr().split('\n').filter((l) => l.includes('attack command-injection'));
    expect(lines.every((l) => !l.includes('/shell-quoted'))).toBe(true);
    expect(lines.length).toBe(attacks.length);
  });
});

async function waitForFile(path: string): Promise<void> {
  for (let i = 0; i < 20 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 25));
}
