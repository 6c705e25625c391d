/**
 * End-to-end unsafe deserialization: an Express app that reads a node-serialize profile cookie (CVE-2017-5941),
 * node-serialize preferences from a JSON body, and a js-yaml 3 document from a text body. Without the agent every
 * attack runs code in the app (it writes a marker file); with the agent in block mode the request gets the
 * standard 403 and no marker file appears. Benign documents get the same answer either way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startApp, type RunningApp } from '../helpers/app.js';
import { readCorpus } from '../helpers/corpus.js';

interface Case {
  route: string;
  doc: string;
  note?: string;
}

const attacks = readCorpus<Case>('unsafe-deserialization.attack.jsonl');
const benign = readCorpus<Case>('unsafe-deserialization.benign.jsonl');
const DIR = mkdtempSync(join(tmpdir(), 'sg-deser-'));
const env = { STEPGUARD_RULES: '' };
let bare: RunningApp;
let guarded: RunningApp;

beforeAll(async () => {
  [bare, guarded] = await Promise.all([
    startApp(fixture('deserialize-app.cjs'), { agent: false, env }),
    startApp(fixture('deserialize-app.cjs'), { env: { ...env, STEPGUARD_MODE: 'block' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
  rmSync(DIR, { recursive: true, force: true });
});

async function send(app: RunningApp, c: Case, doc: string): Promise<{ status: number; contentType: string | null; body: string }> {
  let res: Response;
  if (c.route === '/profile') {
    res = await fetch(`${app.url}/profile`, { headers: { cookie: `profile=${Buffer.from(doc).toString('base64')}` } });
  } else if (c.route === '/prefs') {
    res = await fetch(`${app.url}/prefs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: doc }) });
  } else {
    res = await fetch(`${app.url}${c.route}`, { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: doc });
  }
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
}

describe('unsafe deserialization corpus', () => {
  it('has attacks on both loaders and benign documents', () => {
    expect(attacks.filter((a) => a.route === '/config').length).toBeGreaterThanOrEqual(3);
    expect(attacks.filter((a) => a.route !== '/config').length).toBeGreaterThanOrEqual(3);
    expect(benign.length).toBeGreaterThanOrEqual(8);
  });
});

describe.each(attacks.map((a, i) => ({ ...a, i })))('attack $route ($note)', (c) => {
  it('runs code without the agent and is refused with it', async () => {
    const bareMark = join(DIR, `bare-${c.i}`);
    await send(bare, c, c.doc.split('{MARK}').join(bareMark));
    expect(existsSync(bareMark)).toBe(true);

    const guardedMark = join(DIR, `guarded-${c.i}`);
    const answer = await send(guarded, c, c.doc.split('{MARK}').join(guardedMark));
    expect(answer.status).toBe(403);
    expect(answer.contentType).toBe('application/problem+json');
    expect(Object.keys(JSON.parse(answer.body) as object).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
    expect(existsSync(guardedMark)).toBe(false);
  });
});

describe.each(benign)('benign $route $doc', (c) => {
  it('gets the same answer with and without the agent', async () => {
    const [plain, withAgent] = await Promise.all([send(bare, c, c.doc), send(guarded, c, c.doc)]);
    expect(plain.status).toBe(200);
    expect(withAgent).toEqual(plain);
  });
});
